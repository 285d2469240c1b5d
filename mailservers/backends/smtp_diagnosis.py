"""Explain why connecting to an SMTP server failed, precisely and without secrets.

``connection_error`` turns a socket, TLS or smtplib exception into the
``mailservers.errors`` class and message shown beside the server (unknown host,
refused port, untrusted certificate, port/security mismatch, timeout, refused
credentials with the Gmail app-password hint).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import Protocol

from django.utils.translation import gettext as _

from mailservers.errors import (
    MailServerError,
    ServerAuthError,
    ServerConfigError,
    TransientError,
)


class ServerAddress(Protocol):
    """What a diagnosis reads of ``mailservers.backends.smtp.SmtpParams``."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def timeout(self) -> float: ...


SECURITY_SSL = "ssl"
_GMAIL_HOSTS = ("gmail.com", "googlemail.com")


def decode_reply(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return _("no answer in time")
    return str(exc) or exc.__class__.__name__


def connection_error(exc: BaseException, p: ServerAddress) -> MailServerError:
    """A precise, secret-free explanation of why connecting/authenticating failed."""
    where = {"host": p.host, "port": p.port, "timeout": int(p.timeout)}
    if isinstance(exc, socket.gaierror):
        return ServerConfigError(
            _("Unknown host %(host)s: check the server name.") % where, detail=str(exc)
        )
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(
            _(
                "%(host)s refused the connection on port %(port)s: nothing listens "
                "there (check the port) or a firewall blocks it."
            )
            % where,
            detail=str(exc),
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ServerConfigError(
            _("The certificate of %(host)s is not trusted: %(reason)s.")
            % {**where, "reason": exc.verify_message or exc.reason},
            detail=str(exc),
        )
    if isinstance(exc, ssl.SSLError):
        if "WRONG_VERSION_NUMBER" in str(exc) or exc.reason == "WRONG_VERSION_NUMBER":
            return ServerConfigError(
                _(
                    "%(host)s:%(port)s does not speak SSL/TLS: use STARTTLS (port 587) "
                    "or no encryption on this port."
                )
                % where,
                detail=str(exc),
            )
        return ServerConfigError(
            _("TLS negotiation with %(host)s failed: %(reason)s.")
            % {**where, "reason": exc.reason or str(exc)},
            detail=str(exc),
        )
    if isinstance(exc, TimeoutError | socket.timeout | smtplib.SMTPServerDisconnected):
        hint = ""
        if p.security != SECURITY_SSL and p.port == 465:
            hint = " " + _("Port 465 expects SSL/TLS: choose that security.")
        elif p.security == SECURITY_SSL and p.port in (25, 587):
            hint = " " + _("Port %(port)s expects STARTTLS, not SSL/TLS.") % where
        # smtplib reports a read timeout as "Connection unexpectedly closed: timed out".
        closed = isinstance(exc, smtplib.SMTPServerDisconnected)
        if closed and "timed out" not in str(exc):
            message = _("%(host)s:%(port)s closed the connection.") % where
        else:
            message = (
                _("No answer from %(host)s:%(port)s within %(timeout)s s.") % where
            )
        return TransientError(message + hint, detail=str(exc))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = decode_reply(exc.smtp_error)
        message = _("%(host)s refused the credentials: %(code)s %(reply)s") % {
            **where,
            "code": exc.smtp_code,
            "reply": reply,
        }
        if p.host.lower().endswith(_GMAIL_HOSTS) or "gsmtp" in reply:
            message += " " + _(
                "Gmail needs an app password (Google Account > Security > App "
                "passwords) or the Gmail sign-in, not your account password."
            )
        return ServerAuthError(message, detail=reply)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return ServerConfigError(
            _("%(host)s does not support this: %(error)s") % {**where, "error": exc},
            detail=str(exc),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = f"{exc.smtp_code} {decode_reply(exc.smtp_error)}"
        cls = TransientError if 400 <= exc.smtp_code < 500 else ServerConfigError
        return cls(
            _("%(host)s answered: %(reply)s") % {**where, "reply": reply}, detail=reply
        )
    return TransientError(
        _("Cannot reach %(host)s:%(port)s: %(error)s")
        % {**where, "error": describe_error(exc)},
        detail=repr(exc),
    )
