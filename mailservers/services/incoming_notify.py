"""Tell the admins (inbox) that an incoming server needs attention or left mail behind.

Like ``mailservers.oauth_notices``, through ``feed.services.notify_users``: a notice on the server
row (its inbox link opens the server page) for every active admin. Called inside the
transaction that flags the server, so the notice exists exactly when the flag does.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import escape
from django.utils.translation import gettext as _

from feed.models import Message
from feed.services import notify_users
from mailservers.models.incoming import IncomingServer


def _notify_admins(*, server: IncomingServer, subject: str, body_html: str) -> Message:
    admins = get_user_model().objects.filter(
        Q(is_active=True) & (Q(is_staff=True) | Q(is_superuser=True))
    )
    return notify_users(
        target=server, users=admins, subject=subject, body_html=body_html
    )


def notify_needs_attention(*, server: IncomingServer, reason: str) -> Message:
    subject = _("Incoming mail server %(name)s needs attention") % {"name": server.name}
    body = (
        f"<p>{escape(_('Knowlix cannot fetch mail from'))} "
        f"<strong>{escape(server.name)}</strong> ({escape(server.host)}): "
        f"{escape(reason)}</p><p>"
        + escape(
            _(
                "Other servers keep working. Fix the settings and click "
                "Test connection; mail is caught up on the next successful poll."
            )
        )
        + "</p>"
    )
    return _notify_admins(server=server, subject=subject, body_html=body)


def notify_oversize(*, server: IncomingServer, size: int, summary: str) -> Message:
    subject = _("A message too large to fetch was left on %(name)s") % {
        "name": server.name
    }
    body = (
        f"<p>{escape(summary or _('(no headers)'))}</p><p>"
        + escape(
            _("Size: %(mb).1f MB. It stays on the server; open it with a mail client.")
            % {"mb": size / 1024 / 1024}
        )
        + "</p>"
    )
    return _notify_admins(server=server, subject=subject, body_html=body)


def summarize_headers(headers: bytes) -> str:
    """ "From … — Subject … — Date …" of an oversized message (headers only)."""
    try:
        msg = BytesHeaderParser(policy=default_policy).parsebytes(headers)
        parts = [
            f"{name}: {msg[name]}" for name in ("From", "Subject", "Date") if msg[name]
        ]
    except Exception:  # malformed headers: show what we can, never fail the poll
        parts = [headers[:200].decode("utf-8", errors="replace")]
    return " — ".join(parts)[:500]
