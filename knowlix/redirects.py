"""Where a ``next`` parameter may send the browser: only a path of this site."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next_url(request: HttpRequest, value: str | None, fallback: str) -> str:
    """``value`` if it is a path on this site (``/...``), else ``fallback`` (a URL
    name or path). Absolute URLs, ``//host``, backslashes and schemes are refused."""
    value = (value or "").strip()
    if (
        value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return resolve_url(fallback)
