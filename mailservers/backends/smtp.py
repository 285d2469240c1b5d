"""One SMTP connection, in the shape of ``django/core/mail/backends/smtp.py``.

``SmtpConnection`` opens (TCP, TLS, AUTH with a password or an XOAUTH2 token), sends
prebuilt RFC 5322 bytes with a result per recipient, and closes. Every failure becomes
a ``mailservers.errors`` class: 4xx, timeouts and dropped connections are transient,
5xx permanent, refused credentials ``ServerAuthError``, host/TLS/port problems
``ServerConfigError``, a provider's sending quota ``ServerQuotaError``. Messages never
contain the password or the token.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.utils.translation import gettext as _

from mailservers.addresses import (
    NO_SMTPUTF8_REASON,
    InvalidAddress,
    SmtpAddress,
    smtp_address,
)
from mailservers.backends.smtp_diagnosis import (
    connection_error,
    decode_reply,
    describe_error,
)
from mailservers.errors import (
    DeliveryError,
    MailServerError,
    ServerConfigError,
    ServerQuotaError,
    TransientError,
    UncertainDeliveryError,
)
from mailservers.tls import mail_ssl_context

SECURITY_NONE, SECURITY_SSL, SECURITY_STARTTLS = "none", "ssl", "starttls"
_URL_SCHEMES = {
    "smtp": (SECURITY_NONE, 25),
    "smtp+starttls": (SECURITY_STARTTLS, 587),
    "smtps": (SECURITY_SSL, 465),
}
# A provider's sending quota (Gmail 5.4.5 "Daily user sending limit exceeded",
# Microsoft "submission quota", Mailjet "rate limit"); a full *mailbox* is not one.
_QUOTA = re.compile(
    r"\b[45]\.4\.5\b|(sending|daily|submission|message|rate)[ -](quota|limit)"
    r"|quota exceeded|too many (messages|emails|recipients)",
    re.IGNORECASE,
)


# Recipients of one pipelined group at most: the group stays a few kilobytes, far
# below any socket buffer, so the server's replies can never block our writes
# (RFC 2920 section 3.2). A mail with more goes one command at a time.
PIPELINE_MAX_RECIPIENTS = 100


@dataclass(frozen=True)
class SmtpParams:
    """Everything needed to reach one server; ``token`` returns an XOAUTH2 token."""

    host: str
    port: int
    security: str = SECURITY_NONE
    username: str = ""
    password: str = field(default="", repr=False)
    token: Callable[[], str] | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str = ""  # trust this CA file instead of the system's (tests, private CAs)
    local_hostname: str | None = None
    # Send a mail's MAIL, RCPT and DATA in one write when the server offers
    # PIPELINING (RFC 2920), as Postfix's client does; off: one command at a time.
    pipelining: bool = True

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> SmtpParams:
        """``smtp://``, ``smtp+starttls://`` or ``smtps://user:password@host:port``."""
        parts = urlsplit(url)
        if parts.scheme not in _URL_SCHEMES or not parts.hostname:
            raise ServerConfigError(
                _("%(url)s is not an smtp://, smtp+starttls:// or smtps:// URL.")
                % {"url": parts.scheme + "://" + (parts.hostname or "")}
            )
        security, default_port = _URL_SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            **kwargs,  # type: ignore[arg-type]
        )


class SendCancelled(Exception):  # noqa: N818  (not an error: the caller's choice)
    """``before_data`` said not to send: nothing of the mail's content left."""


@dataclass(frozen=True)
class RecipientResult:
    """The server's answer for one recipient (RCPT TO, or DATA for accepted ones)."""

    address: str
    code: int
    reply: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def as_error(self) -> DeliveryError:
        return DeliveryError(
            f"{self.code} {self.reply}".strip(),
            permanent=self.permanent,
            smtp_code=self.code,
        )


class SmtpConnection:
    """Open once, ``send`` many, ``close``; usable as a context manager."""

    def __init__(self, params: SmtpParams) -> None:
        self.params = params
        self.connection: smtplib.SMTP | None = None
        # Done ahead by ``prepare`` for the coming mail: checked addresses, and
        # the content dot-stuffed (keyed by the very bytes object).
        self._checked: dict[str, SmtpAddress] = {}
        self._stuffed: tuple[bytes, bytes] | None = None

    # -- opening -----------------------------------------------------------------------
    def open(self) -> bool:
        """Connect, negotiate TLS and authenticate; False if already open."""
        if self.connection is not None:
            return False
        p = self.params
        conn: smtplib.SMTP | None = None
        try:
            if p.security == SECURITY_SSL:
                conn = smtplib.SMTP_SSL(
                    p.host,
                    p.port,
                    local_hostname=p.local_hostname,
                    timeout=p.timeout,
                    context=self._ssl_context(),
                )
            else:
                conn = smtplib.SMTP(
                    p.host, p.port, local_hostname=p.local_hostname, timeout=p.timeout
                )
            conn.ehlo()
            if p.security == SECURITY_STARTTLS:
                if not conn.has_extn("starttls"):
                    raise ServerConfigError(
                        _(
                            "%(host)s:%(port)s does not offer STARTTLS: choose "
                            "SSL/TLS (usually port 465) or no encryption."
                        )
                        % {"host": p.host, "port": p.port}
                    )
                conn.starttls(context=self._ssl_context())
                conn.ehlo()
            self._authenticate(conn)
        except MailServerError:
            _quit_quietly(conn)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            _quit_quietly(conn)
            raise connection_error(exc, p) from exc
        self.connection = conn
        return True

    def _ssl_context(self) -> ssl.SSLContext:
        return mail_ssl_context(self.params.ca_file)

    def _authenticate(self, conn: smtplib.SMTP) -> None:
        p = self.params
        if not p.username and p.token is None:
            return
        if not conn.has_extn("auth"):
            raise ServerConfigError(
                _(
                    "%(host)s does not offer authentication on this connection "
                    "(many servers offer it only after STARTTLS)."
                )
                % {"host": p.host}
            )
        if p.token is not None:
            token = p.token()

            def xoauth2(challenge: bytes | None = None) -> str:
                # Google answers a refused token with a JSON challenge: reply empty
                # to receive the final 535 (RFC 7628 / Gmail's XOAUTH2 docs).
                if challenge is not None:
                    return ""
                return f"user={p.username}\x01auth=Bearer {token}\x01\x01"

            conn.auth("XOAUTH2", xoauth2, initial_response_ok=True)
        else:
            conn.login(p.username, p.password)

    def close(self) -> None:
        _quit_quietly(self.connection)
        self.connection = None

    def __enter__(self) -> SmtpConnection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------
    def prepare(self, addresses: Iterable[str], raw: bytes) -> None:
        """Do ahead for a coming mail what ``send`` would do first: check its
        envelope addresses and dot-stuff its content. The drain calls it while
        the server reads the previous mail (``send``'s ``after_data``), so that
        work is off the dialogue's critical path. An address that fails the check
        is left to ``send``, which reports it as usual."""
        checked = {}
        for address in addresses:
            try:
                checked[address] = smtp_address(address)
            except InvalidAddress:
                continue
        self._checked = checked
        self._stuffed = (raw, _stuff(raw))

    def _smtp_address(self, address: str) -> SmtpAddress:
        found = self._checked.get(address)
        return found if found is not None else smtp_address(address)

    def _stuffed_body(self, raw: bytes) -> bytes:
        prepared, self._stuffed = self._stuffed, None
        if prepared is not None and prepared[0] is raw:
            return prepared[1]
        return _stuff(raw)

    def send(
        self,
        *,
        mail_from: str,
        recipients: Sequence[str],
        raw: bytes,
        utf8_headers: bool = False,
        before_data: Callable[[], Callable[[], bool]] | None = None,
        after_data: Callable[[], None] | None = None,
    ) -> dict[str, RecipientResult]:
        """Send ``raw`` to ``recipients``: a result for every recipient.

        Each address goes out in its SMTP form (IDN domains in punycode); one that
        cannot (malformed, or a non-ASCII local part on a server without SMTPUTF8)
        gets a permanent result of its own and the others are still sent. A reply
        about the whole mail (MAIL FROM or DATA refused) is each recipient's
        result. ``utf8_headers``: the bytes have UTF-8 headers (RFC 6532), asking
        for SMTPUTF8 when offered. Raises ``TransientError`` when the connection
        is lost or closing (421): the connection is then closed and must be
        reopened. Raises ``ServerQuotaError`` on a sending quota. ``before_data``
        runs right before the mail's first command goes out: the caller does its
        bookkeeping and starts recording that the mail may now reach the server,
        and returns a function ``go_on`` that says whether to go on. It is called
        once the server has answered MAIL, RCPT and DATA (354), before any byte of
        the content is sent, so the caller's write overlaps those answers; it is
        called on every other way out too (a refusal, a lost connection), so the
        caller's database is free again when ``send`` returns or raises. If it
        says no, the connection is dropped (in the middle of DATA only that aborts
        the transaction, RFC 5321 3.8) and ``SendCancelled`` raised: nothing of
        the content left. When the server offers PIPELINING (RFC 2920) and
        ``params.pipelining`` is on, MAIL, the RCPTs and DATA leave in one write
        and their answers are read in order; the content still waits for the 354
        and ``go_on``. ``after_data`` runs once the final
        dot is on the wire, before the server's verdict is read (the drain
        ``prepare``s its next mail meanwhile); it must not raise, and if it does
        the error is dropped: the verdict comes first.
        """
        if self.connection is None:
            self.open()
        conn = self.connection
        assert conn is not None
        try:
            sender = self._smtp_address(mail_from).addr_spec if mail_from else ""
        except InvalidAddress as exc:
            raise DeliveryError(exc.user_message, permanent=True) from None
        has_smtputf8 = conn.has_extn("smtputf8")
        results: dict[str, RecipientResult] = {}
        envelope: dict[str, str] = {}  # SMTP form -> the address as queued
        for address in recipients:
            try:
                smtp = self._smtp_address(address)
            except InvalidAddress as exc:
                results[address] = RecipientResult(address, 553, exc.user_message)
                continue
            if smtp.needs_smtputf8 and not has_smtputf8:
                reason = NO_SMTPUTF8_REASON % {"address": address}
                results[address] = RecipientResult(address, 553, str(reason))
                continue
            envelope[smtp.addr_spec] = address
        if not envelope:
            return results
        utf8 = has_smtputf8 and (utf8_headers or any(not a.isascii() for a in envelope))
        try:
            answers = self._transaction(
                conn,
                sender,
                list(envelope),
                raw,
                before_data,
                after_data,
                utf8=utf8,
            )
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise TransientError(
                _("The connection to %(host)s was lost: %(error)s")
                % {"host": self.params.host, "error": describe_error(exc)},
                detail=repr(exc),
            ) from exc
        finally:
            if self.connection is not None:
                self.connection.command_encoding = "ascii"
        for smtp_form, result in answers.items():
            address = envelope[smtp_form]
            results[address] = RecipientResult(address, result.code, result.reply)
        return results

    def _transaction(
        self,
        conn: smtplib.SMTP,
        mail_from: str,
        recipients: list[str],
        raw: bytes,
        before_data: Callable[[], Callable[[], bool]] | None,
        after_data: Callable[[], None] | None,
        *,
        utf8: bool = False,
    ) -> dict[str, RecipientResult]:
        options = []
        if conn.has_extn("size"):
            limit = int(conn.esmtp_features.get("size") or 0)
            if limit and len(raw) > limit:
                reason = _(
                    "the mail (%(size)s bytes) is larger than the server accepts"
                )
                return _all(recipients, 552, reason % {"size": len(raw)})
            options.append(f"SIZE={len(raw)}")
        if utf8:  # RFC 6531: UTF-8 in the envelope and the headers
            options.append("SMTPUTF8")
            if conn.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            conn.command_encoding = "utf-8"
        # Addresses were checked by smtp_address (no spaces, brackets or controls),
        # so they are quoted as-is, as smtplib.mail/rcpt would after parsing them.
        mail = f"FROM:<{mail_from}>" + "".join(f" {o}" for o in options)
        pipelined = (
            self.params.pipelining
            and conn.has_extn("pipelining")
            and len(recipients) <= PIPELINE_MAX_RECIPIENTS
        )
        # The caller's write starts first: it has every answer's time to finish.
        go_on = _Answer(before_data() if before_data is not None else None)
        try:
            if pipelined:
                commands = [f"MAIL {mail}", *(f"RCPT TO:<{a}>" for a in recipients)]
                conn.send(_command_group([*commands, "DATA"]))
            else:
                conn.putcmd("mail", mail)
            code, reply = conn.getreply()
            if code != 250:
                if pipelined:
                    return self._refused_group(conn, recipients, code, reply)
                return self._refused(conn, recipients, code, decode_reply(reply))
            results: dict[str, RecipientResult] = {}
            for address in recipients:
                if not pipelined:
                    conn.putcmd("rcpt", f"TO:<{address}>")
                code, reply = conn.getreply()
                text = decode_reply(reply)
                self._check_closing(code, text)
                results[address] = RecipientResult(address, code, text)
            accepted = [r.address for r in results.values() if r.ok]
            if pipelined:
                code, reply = conn.getreply()  # DATA's answer, sent with the group
            elif accepted:
                conn.putcmd("data")
                code, reply = conn.getreply()
            if not accepted:
                self._end_transaction(conn, code)
                return results
            code, reply = self._data(conn, raw, go_on, after_data, code, reply)
        finally:
            go_on.read()  # on every way out: the caller's database is free again
        if code != 250:
            text = decode_reply(reply)
            self._check_closing(code, text)
            results.update(_all(accepted, code, text))
        return results

    def _data(
        self,
        conn: smtplib.SMTP,
        raw: bytes,
        go_on: _Answer,
        after_data: Callable[[], None] | None,
        code: int,
        reply: bytes,
    ) -> tuple[int, bytes]:
        """The body after DATA's answer (``code``, ``reply``), then the server's
        verdict.

        Like ``smtplib.SMTP.data`` but split where it matters for exactly-once: the
        body leaves only once ``go_on`` said yes (else the connection is dropped
        and ``SendCancelled`` raised); a connection lost while the body is still on
        its way means the mail was not taken (the caller retries it); lost after
        the final dot, before the reply, nobody can tell whether the server kept
        it, so the mail fails permanently with that reason instead of being
        retried and perhaps delivered twice.
        """
        if code != 354:
            return code, reply
        if not go_on.read():
            # Mid-DATA, RSET would be content: dropping the connection before the
            # final dot is what aborts the transaction (RFC 5321 3.8).
            self._drop(conn)
            raise SendCancelled
        conn.send(self._stuffed_body(raw))
        if after_data is not None:
            with contextlib.suppress(Exception):  # documented: the verdict first
                after_data()
        try:
            return conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise UncertainDeliveryError(
                _(
                    "The connection to %(host)s was lost after the whole mail was "
                    "sent, before the server confirmed it: Knowlix cannot tell "
                    "whether it left. Check with the recipient, then Retry."
                )
                % {"host": self.params.host},
                detail=repr(exc),
            ) from exc

    def _drop(self, conn: smtplib.SMTP) -> None:
        conn.close()
        self.connection = None

    def _end_transaction(self, conn: smtplib.SMTP, data_code: int) -> None:
        """No recipient was accepted: end the transaction without content. A
        server that answered DATA with 354 anyway (RFC 2920 says it must not)
        waits for content: dropping the connection aborts it, an empty message
        would not."""
        if data_code == 354:
            self._drop(conn)
        else:
            conn.rset()

    def _refused_group(
        self, conn: smtplib.SMTP, recipients: list[str], code: int, reply: bytes
    ) -> dict[str, RecipientResult]:
        """MAIL refused in a pipelined group: the RCPTs' and DATA's answers (503s)
        are read and dropped, then the transaction ends as without pipelining. A
        server that closes meanwhile only loses the connection: the refusal
        stands."""
        text = decode_reply(reply)
        self._check_closing(code, text)
        last = code
        try:
            for _command in range(len(recipients) + 1):
                last, _reply = conn.getreply()
                if last == 421:
                    break
        except (smtplib.SMTPServerDisconnected, OSError):
            last = 421
        if last == 421:
            self.close()
        else:
            self._end_transaction(conn, last)
        return _all(recipients, code, text)

    def _refused(
        self, conn: smtplib.SMTP, recipients: list[str], code: int, reply: str
    ) -> dict[str, RecipientResult]:
        self._check_closing(code, reply)
        conn.rset()
        return _all(recipients, code, reply)

    def _check_closing(self, code: int, reply: str) -> None:
        if _QUOTA.search(reply) and "mailbox" not in reply.lower():
            self.close()
            raise ServerQuotaError(
                _("%(host)s refuses more mail for now: %(code)s %(reply)s")
                % {"host": self.params.host, "code": code, "reply": reply},
                detail=reply,
            )
        if code == 421:
            self.close()
            raise TransientError(
                _("%(host)s is closing the connection: %(code)s %(reply)s")
                % {"host": self.params.host, "code": code, "reply": reply},
                detail=reply,
            )


class _Answer:
    """The caller's ``go_on`` function, called exactly once (None: always go on)."""

    def __init__(self, go_on: Callable[[], bool] | None) -> None:
        self.go_on = go_on
        self.held: bool | None = None if go_on is not None else True

    def read(self) -> bool:
        if self.held is None:
            assert self.go_on is not None
            self.held = False  # if go_on raises, nothing more is sent
            self.held = self.go_on()
        return self.held


def _command_group(commands: list[str]) -> str:
    """Pipelined commands as one string, CRLF after each. A command holding a line
    break of its own would smuggle another: refused, as ``smtplib.putcmd`` does."""
    for command in commands:
        if "\r" in command or "\n" in command:
            raise ValueError("an SMTP command cannot contain a line break")
    return "".join(f"{command}\r\n" for command in commands)


def _stuff(raw: bytes) -> bytes:
    """The DATA content: RFC 5321 dot-stuffed, CRLF-ended, then the final dot."""
    # _quote_periods is private, so absent from typeshed.
    body: bytes = smtplib._quote_periods(raw)  # type: ignore[attr-defined]  # noqa: SLF001
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _all(
    recipients: Sequence[str], code: int, reply: str
) -> dict[str, RecipientResult]:
    return {a: RecipientResult(a, code, reply) for a in recipients}


def _quit_quietly(conn: smtplib.SMTP | None) -> None:
    """QUIT, or just drop the socket: closing never raises (results are recorded)."""
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


def test_connection(
    params: SmtpParams, *, opener: Callable[[SmtpConnection], None] | None = None
) -> ConnectionCheck:
    """Connect, negotiate TLS, authenticate and say precisely what went wrong.

    ``opener(connection)`` replaces ``connection.open()`` (OAuth servers sign in
    through their grant, see ``mailservers.services.outbox.open_connection``).
    """
    connection = SmtpConnection(params)
    try:
        (opener or SmtpConnection.open)(connection)
        assert connection.connection is not None
        connection.connection.noop()
    except MailServerError as exc:
        return ConnectionCheck(False, exc.user_message)
    except (smtplib.SMTPException, OSError) as exc:
        return ConnectionCheck(False, connection_error(exc, params).user_message)
    finally:
        connection.close()
    return ConnectionCheck(
        True,
        _("Connected to %(host)s:%(port)s; the server accepted the login.")
        % {"host": params.host, "port": params.port}
        if params.username or params.token or opener
        else _("Connected to %(host)s:%(port)s.")
        % {"host": params.host, "port": params.port},
    )


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
