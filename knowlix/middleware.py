"""A ceiling on the size of any request body, before Django reads it; the
browser's address behind the TLS proxy.

``DATA_UPLOAD_MAX_MEMORY_SIZE`` bounds form fields only, not uploaded files; this
refuses a request whose declared length is above ``KNOWLIX_REQUEST_MAX_BYTES`` with
a 413 and a clear reason, so a giant upload never reaches a view or the disk.
"""

from __future__ import annotations

import ipaddress
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


def client_ip(request: HttpRequest) -> str | None:
    """The browser's address (django-axes' ``AXES_CLIENT_IP_CALLABLE``).

    Behind the TLS proxy (``SECURE_PROXY_SSL_HEADER`` set) every request comes from
    the proxy, so the address is the last ``X-Forwarded-For`` entry: the one the
    proxy appended (nginx' ``$proxy_add_x_forwarded_for``, Caddy), which a client
    cannot choose. Only a proxy on this host or a private network (compose's) is
    believed: a caller from elsewhere reached gunicorn directly and could write
    any header. Otherwise, and when that entry is not an address, REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR")
    if settings.SECURE_PROXY_SSL_HEADER and _is_local(remote):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass
    return remote


def _is_local(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private
