"""The home page: one tile per app with counts the user may see."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from knowlix.access import can_view_model, visible_records
from knowlix.recordviews import RECORD_KINDS


def home(request: HttpRequest) -> HttpResponse:
    tiles = [
        {"kind": kind, "count": visible_records(request.user, kind.model).count()}
        for kind in RECORD_KINDS
        if can_view_model(request.user, kind.model)
    ]
    return render(request, "knowlix/home.html", {"tiles": tiles})
