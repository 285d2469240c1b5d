"""The local mail catcher: an SMTP server on loopback that keeps what it receives.

``python manage.py mailcatcher`` (started by ``make run``) listens on
``KNOWLIX_MAILCATCHER`` and stores every message as a ``CaughtMail`` row, shown on the
*Local mailbox* page; mail to the catch-all domain then goes through routing like any
incoming mail, so the whole loop works without a real mail account. It accepts
any sender, recipient and login (it delivers nowhere); bind it to loopback only.
"""

from __future__ import annotations

import logging
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from asgiref.sync import sync_to_async
from django.db import connection

from mailservers.mime import clean_header
from mailservers.models import CaughtMail
from mailservers.services.localmailbox import route_caught_mail

logger = logging.getLogger(__name__)
MAX_BYTES = 64 * 1024 * 1024


def store_caught_mail(*, mail_from: str, rcpt_tos: list[str], raw: bytes) -> CaughtMail:
    """Save one caught message (headers parsed for the list; the rest on display)."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)

    def header(name: str) -> str:
        try:
            return clean_header(str(headers.get(name, "")))
        except (ValueError, IndexError):  # a malformed header: keep it out of the list
            return ""

    return CaughtMail.objects.create(
        mail_from=mail_from[:320],
        rcpt_tos=rcpt_tos,
        subject=header("Subject")[:998],
        from_header=header("From")[:998],
        to_header=header("To"),
        message_id=header("Message-ID")[:998],
        raw=raw,
        size=len(raw),
    )


def _store_and_close(*, mail_from: str, rcpt_tos: list[str], raw: bytes) -> CaughtMail:
    """Store from the executor thread, route it when it is for our domain, then release
    the database connection (a quiet catcher must not hold a session open between
    mails). The row is committed before routing, so routing can never lose it."""
    try:
        caught = store_caught_mail(mail_from=mail_from, rcpt_tos=rcpt_tos, raw=raw)
        try:
            route_caught_mail(caught=caught)
        except Exception:  # noqa: BLE001 - e.g. the outcome not saved: still caught
            logger.exception(
                "caught mail %s kept, its routing outcome not saved", caught.pk
            )
        return caught
    finally:
        connection.close()


class CatcherHandler:
    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = bytes(envelope.original_content or b"")
        mail = await sync_to_async(_store_and_close)(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
        )
        logger.info("caught mail %s (%d bytes)", mail.pk, len(raw))
        return "250 2.0.0 Caught"


def _accept_any_login(*args: object) -> AuthResult:
    return AuthResult(success=True)


def start_mailcatcher(host: str, port: int) -> Controller:
    """Start the catcher in a background thread; ``.stop()`` it when done."""
    controller = Controller(
        CatcherHandler(),
        hostname=host,
        port=port,
        data_size_limit=MAX_BYTES,
        authenticator=_accept_any_login,
        auth_require_tls=False,
    )
    controller.start()
    return controller


def parse_address(value: str) -> tuple[str, int]:
    """``"127.0.0.1:1025"`` -> ``("127.0.0.1", 1025)``."""
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)
