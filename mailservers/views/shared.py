"""What both kinds of server page share: their words and their links.

One place for the flash messages of Save, Test connection and Delete, so an
incoming and an outgoing server never describe the same event differently.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _


def saved(name: str) -> str:
    return _("Server %(name)s saved. Test the connection to confirm it.") % {
        "name": name
    }


def deleted(name: str) -> str:
    return _("Server %(name)s deleted.") % {"name": name}


def test_ok(detail: str) -> str:
    return _("Connection OK: %(detail)s") % {"detail": detail}


def test_failed(detail: str) -> str:
    return _("Test failed: %(detail)s") % {"detail": detail}


def page_urls(*, kind: str, pk: int | None) -> dict[str, str]:
    """The links and actions both kinds of server page show, by URL name."""
    urls = {"kind": kind, "list_url": reverse(f"mailservers:{kind}-list")}
    if pk:
        for action in ("test", "edit", "delete"):
            urls[f"{action}_url"] = reverse(f"mailservers:{kind}-{action}", args=[pk])
    return urls
