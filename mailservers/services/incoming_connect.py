"""Connect to an incoming server, test it, save its settings, record poll outcomes.

The UI-facing half of the incoming side (``incoming`` polls). A failure is stored on
the server row (``last_error``); an auth/config problem, or
``FAILURES_BEFORE_ATTENTION`` transient ones in a row, flags a confirmed server
*needs attention* and notifies the admins, in the same transaction as the flag.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mailservers.errors import MailServerError, PermanentError, ServerConfigError
from mailservers.incoming import ConnectionSettings
from mailservers.incoming.imap import ImapFetcher
from mailservers.incoming.pop3 import Pop3Fetcher
from mailservers.models import IncomingServer
from mailservers.oauth.presets import apply_oauth_rules
from mailservers.services import incoming_notify
from mailservers.services.oauth import with_fresh_token
from mailservers.tls import mail_ssl_context

logger = logging.getLogger(__name__)

FAILURES_BEFORE_ATTENTION = 3
Server = IncomingServer
# Changing one of these points the server at another mailbox: forget the position.
MAILBOX_FIELDS = ("kind", "host", "port", "username", "folder")


def max_message_bytes() -> int:
    return settings.KNOWLIX_INCOMING_MAX_BYTES


def ssl_context() -> ssl.SSLContext:
    return mail_ssl_context(settings.KNOWLIX_MAIL_CA_FILE)


# --- Connection -------------------------------------------------------------------


def connection_settings(
    *, server: IncomingServer, token_provider: Callable[[], str] | None = None
) -> ConnectionSettings:
    return ConnectionSettings(
        host=server.host,
        port=server.effective_port,
        security=server.security,
        username=server.username,
        password=server.password or "",
        token_provider=token_provider,
        timeout=float(settings.KNOWLIX_IMAP_TIMEOUT),
        ssl_context=ssl_context(),
    )


OAUTH_METHODS: dict[str, str] = {
    Server.AuthMethod.OUTLOOK: "Outlook",
    Server.AuthMethod.GMAIL: "Gmail",
}


def open_fetcher(server: IncomingServer) -> ImapFetcher | Pop3Fetcher:
    """A connected, logged-in fetcher. With Outlook or Gmail OAuth (XOAUTH2), a token
    the server refuses is refreshed once (``with_fresh_token``) before giving up."""
    provider = OAUTH_METHODS.get(server.auth_method)
    if provider is None:
        return _connect(server, connection_settings(server=server))
    if server.oauth_grant is None:
        raise ServerConfigError(
            _("Connect the %(provider)s account first.") % {"provider": provider}
        )
    return with_fresh_token(
        server.oauth_grant,
        lambda token: _connect(
            server, connection_settings(server=server, token_provider=token)
        ),
    )


def _connect(
    server: IncomingServer, conn: ConnectionSettings
) -> ImapFetcher | Pop3Fetcher:
    if server.is_imap:
        fetcher: ImapFetcher | Pop3Fetcher = ImapFetcher(
            conn, folder=server.folder, max_message_bytes=max_message_bytes()
        )
    else:
        fetcher = Pop3Fetcher(conn, max_message_bytes=max_message_bytes())
    fetcher.connect()
    return fetcher


def check_incoming_server(*, server: IncomingServer, confirm: bool = True) -> str:
    """Log in (and open the folder); on success mark the server confirmed. Returns a
    short description; raises ``MailServerError`` with a precise ``user_message``."""
    try:
        fetcher = open_fetcher(server)
    except MailServerError as exc:
        record_failure(server, exc)
        raise
    try:
        if isinstance(fetcher, ImapFetcher):
            if server.after_store == Server.AfterStore.MOVE:
                fetcher.ensure_folder(server.move_to_folder)
            assert fetcher.state is not None
            summary = _("%(n)d messages in %(folder)s") % {
                "n": fetcher.state.exists,
                "folder": server.folder,
            }
        else:
            summary = _("%(n)d messages in the mailbox") % {"n": len(fetcher.listing())}
    finally:
        fetcher.close()
    now = timezone.now()
    fields = {"last_success_at": now, "consecutive_failures": 0}
    if confirm:
        fields["state"] = Server.State.CONFIRMED
    Server.objects.filter(pk=server.pk).update(**fields)
    server.refresh_from_db()
    return summary


# --- Outcome ------------------------------------------------------------------------


def record_failure(server: IncomingServer, exc: MailServerError) -> None:
    """Record the failure; flag the server after repeated or permanent failures."""
    logger.warning(
        "Incoming server %s failed: %s (%s)", server.pk, exc.user_message, exc.detail
    )
    now = timezone.now()
    with transaction.atomic():
        locked = Server.objects.select_for_update().get(pk=server.pk)
        failures = locked.consecutive_failures + 1
        fields = {
            "last_error": exc.user_message[:2000],
            "last_error_at": now,
            "consecutive_failures": failures,
        }
        flag = locked.state == Server.State.CONFIRMED and (
            isinstance(exc, PermanentError) or failures >= FAILURES_BEFORE_ATTENTION
        )
        if flag:
            fields["state"] = Server.State.NEEDS_ATTENTION
        Server.objects.filter(pk=server.pk).update(**fields)
        if flag:
            incoming_notify.notify_needs_attention(
                server=locked, reason=exc.user_message
            )
    server.refresh_from_db()


def record_success(server: IncomingServer) -> None:
    fields = {"last_success_at": timezone.now(), "consecutive_failures": 0}
    Server.objects.filter(pk=server.pk).update(**fields)
    Server.objects.filter(pk=server.pk, state=Server.State.NEEDS_ATTENTION).update(
        state=Server.State.CONFIRMED
    )
    server.refresh_from_db()


def save_incoming_server(
    *, server: IncomingServer, changed: list[str]
) -> IncomingServer:
    """Save the form's changes; a server pointed at another mailbox goes back to
    draft and forgets its IMAP position (stored mail is still recognised). An
    Outlook/Gmail OAuth server gets its provider's preset and no password first."""
    changed = [*changed, *apply_oauth_rules(server, kind="incoming")]
    if server.pk and any(name in MAILBOX_FIELDS for name in changed):
        server.uidvalidity, server.last_uid = None, 0
        server.state = Server.State.DRAFT
    elif server.pk and "password" in changed and server.state != Server.State.CONFIRMED:
        server.state = Server.State.DRAFT
    server.save()
    return server
