"""URL patterns generated for every record kind from ``knowlix.recordviews``."""

from __future__ import annotations

from django.urls import URLPattern, path

from knowlix.recordviews import RECORD_KINDS
from knowlix.views import records


def record_urlpatterns() -> list[URLPattern]:
    patterns = []
    for kind in RECORD_KINDS:
        base = (
            f"{kind.app_slug}/{kind.slug}/"
            if kind.app_slug != kind.slug
            else f"{kind.slug}/"
        )
        name = kind.url_name
        patterns += [
            path(base, records.record_list, {"kind": kind}, name=f"{name}-list"),
            path(
                f"{base}new/",
                records.record_create,
                {"kind": kind},
                name=f"{name}-create",
            ),
            path(
                f"{base}<int:pk>/",
                records.record_detail,
                {"kind": kind},
                name=f"{name}-detail",
            ),
            path(
                f"{base}<int:pk>/edit/",
                records.record_edit,
                {"kind": kind},
                name=f"{name}-edit",
            ),
        ]
    return patterns
