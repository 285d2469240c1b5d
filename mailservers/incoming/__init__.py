"""Incoming fetchers: IMAP (imapclient) and POP3 (poplib), free of the ORM.

They connect, list and yield raw messages and apply the after-store action when told
to; the service (``mailservers.services.incoming``) decides the order: a message is
committed through routing *before* any flag, move or delete reaches the server.
Every network call has a timeout; socket/TLS/protocol failures become the errors of
``mailservers.errors`` (transient, auth, config), so callers never see a raw socket
exception.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from mailservers.errors import (
    DeliveryError,
    MailServerError,
    ServerAuthError,
    ServerConfigError,
    TransientError,
)
from mailservers.tls import mail_ssl_context

SSL = "ssl"
STARTTLS = "starttls"
NONE = "none"


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to log in. ``token_provider`` switches the login to XOAUTH2."""

    host: str
    port: int
    security: str  # SSL, STARTTLS or NONE
    username: str
    password: str = field(default="", repr=False)
    token_provider: Callable[[], str] | None = field(default=None, repr=False)
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # None: the system's trusted CAs

    def make_ssl_context(self) -> ssl.SSLContext:
        return self.ssl_context or mail_ssl_context()


@dataclass(frozen=True)
class RemoteMessage:
    """One message on the server. ``raw`` is None when it exceeds the size cap;
    ``headers`` then holds its header block so admins can tell what it was."""

    key: int | str  # IMAP UID or POP3 UIDL
    size: int
    raw: bytes | None
    headers: bytes = b""

    @property
    def is_oversize(self) -> bool:
        return self.raw is None


def xoauth2_string(username: str, token: str) -> bytes:
    """The SASL XOAUTH2 initial response (Google/Microsoft)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()


def translate_error(
    exc: BaseException, *, where: str, server: str = ""
) -> MailServerError:
    """Turn a socket/TLS/protocol exception into one of our errors, by whose fault.

    ``server`` (``host:port``) starts the message, as the outgoing side's do."""
    if isinstance(exc, MailServerError):
        return exc
    error = _translate(exc, where=where)
    if server and not isinstance(error, DeliveryError):
        return type(error)(f"{server}: {error.user_message}", detail=error.detail)
    return error


def _translate(exc: BaseException, *, where: str) -> MailServerError:
    detail = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, socket.gaierror):
        return ServerConfigError(
            _("The server name could not be resolved (%(err)s).")
            % {"err": exc.strerror},
            detail=detail,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ServerConfigError(
            _("The server's TLS certificate was refused: %(err)s.")
            % {"err": exc.verify_message or exc.reason},
            detail=detail,
        )
    if isinstance(exc, ssl.SSLError):
        return ServerConfigError(
            _("TLS failed (%(err)s): check that the port matches the security setting.")
            % {"err": exc.reason or exc},
            detail=detail,
        )
    if isinstance(exc, imaplib.IMAP4.abort):  # imapclient's AbortError: socket died
        return TransientError(
            _("The connection to the server was lost (%(err)s).") % {"err": exc},
            detail=detail,
        )
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(
            _("The server refused the connection (is it running on that port?)."),
            detail=detail,
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        if "connect" in where:  # silent from the start: often TLS vs plain mismatch
            return TransientError(
                _(
                    "The server did not answer in time: check that the port matches "
                    "the security setting."
                ),
                detail=detail,
            )
        return TransientError(_("The server did not answer in time."), detail=detail)
    if isinstance(exc, OSError | EOFError):
        return TransientError(
            _("The connection to the server was lost (%(err)s).")
            % {"err": str(exc) or type(exc).__name__},
            detail=detail,
        )
    return TransientError(
        _("The server answered unexpectedly: %(err)s") % {"err": str(exc)[:200]},
        detail=detail,
    )


# Login refusals that are not about the credentials (RFC 5530, RFC 3206): retry later.
_TEMPORARY_LOGIN = ("[UNAVAILABLE]", "[IN-USE]", "[SYS/TEMP]", "[INUSE]")


def auth_error(message: str | bytes) -> ServerAuthError | TransientError:
    """A refused login: bad credentials, or a temporary refusal (mailbox locked by
    another POP3 session, the server's auth backend down)."""
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    if text[:2] in ("b'", 'b"') and text[-1:] in ("'", '"'):
        text = text[2:-1]  # str() of a bytes reply, as imapclient/poplib give it
    if any(marker in text.upper() for marker in _TEMPORARY_LOGIN):
        return TransientError(
            _("The server cannot log us in right now: %(reason)s")
            % {"reason": text.strip()[:200]},
            detail=text,
        )
    return ServerAuthError(
        _("The server refused the login: %(reason)s") % {"reason": text.strip()[:200]},
        detail=text,
    )


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end != -1:
            return raw[: end + len(sep)]
    return raw


def extract_message_id(raw: bytes) -> str:
    """The Message-ID header, found without parsing the whole message (routing parses
    it once; parsing twice would double the cost of ingestion)."""
    match = _MESSAGE_ID.search(header_block(raw))
    if not match:
        return ""
    value = re.sub(rb"\s+", b" ", match.group(1)).strip()
    return value.decode("ascii", errors="replace")[:998]
