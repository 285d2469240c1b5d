"""A ceiling on the size of any request body, before Django reads it.

``DATA_UPLOAD_MAX_MEMORY_SIZE`` bounds form fields only, not uploaded files; this
refuses a request whose declared length is above ``KNOWLIX_REQUEST_MAX_BYTES`` with
a 413 and a clear reason, so a giant upload never reaches a view or the disk.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = int(settings.KNOWLIX_REQUEST_MAX_BYTES)
        if length > limit:
            text = _(
                "This request is %(size)s; the limit is %(limit)s. Send fewer or "
                "smaller files."
            ) % {"size": filesizeformat(length), "limit": filesizeformat(limit)}
            return HttpResponse(text, status=413, content_type="text/plain")
        return self.get_response(request)
