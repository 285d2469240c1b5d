"""POP3 fetcher over poplib: UIDL tracking, size cap, delete only after commit.

Free of the ORM: ``listing()`` gives (number, UIDL, size) for every message, the
caller drops the UIDLs it already stored, ``iter_batches(entries)`` retrieves the rest
and ``apply_after_store(uidls)`` marks committed ones for deletion. POP3 only deletes
at QUIT, so a connection lost before ``close()`` deletes nothing (the messages are
found again, known by UIDL, and deleted on the next poll).
"""

from __future__ import annotations

import base64
import poplib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, ParamSpec, TypeVar

from django.utils.translation import gettext as _

from mailservers.errors import MailServerError, ServerConfigError
from mailservers.incoming import (
    SSL,
    STARTTLS,
    ConnectionSettings,
    RemoteMessage,
    auth_error,
    header_block,
    translate_error,
    xoauth2_string,
)

KEEP, DELETE = "keep", "delete"

# The arguments and the result of a call passed through _call.
P = ParamSpec("P")
T = TypeVar("T")


class _LongLines:
    """poplib refuses lines over 2,048 bytes and reports EOF as a protocol error;
    real mail has longer lines, and a lost connection is a transient fault."""

    max_line = 1024 * 1024
    file: BinaryIO

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(self.max_line + 1)
        if len(line) > self.max_line:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise ConnectionResetError("the POP3 server closed the connection")
        octets = len(line)
        if line.endswith(b"\r\n"):
            return line[:-2], octets
        return line.rstrip(b"\r\n"), octets


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3SSL(_LongLines, poplib.POP3_SSL):
    pass


@dataclass(frozen=True)
class Pop3Entry:
    number: int
    uidl: str
    size: int


class Pop3Fetcher:
    """One POP3 session (a maildrop lock on the server); use as a context manager."""

    batch_messages = 50

    def __init__(
        self, settings: ConnectionSettings, *, max_message_bytes: int = 25 * 1024 * 1024
    ) -> None:
        self.settings = settings
        self._server = f"{settings.host}:{settings.port}"  # named in every error
        self.max_message_bytes = max_message_bytes
        self.conn: poplib.POP3 | None = None
        self._by_uidl: dict[str, Pop3Entry] = {}

    def __enter__(self) -> Pop3Fetcher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        try:
            if s.security == SSL:
                self.conn = _POP3SSL(
                    s.host, s.port, timeout=s.timeout, context=s.make_ssl_context()
                )
            else:
                self.conn = _POP3(s.host, s.port, timeout=s.timeout)
            if s.security == STARTTLS:
                self._call("STLS", self.conn.stls, context=s.make_ssl_context())
            self._login()
        except MailServerError:
            self.close(commit=False)
            raise
        except Exception as exc:
            self.close(commit=False)
            raise translate_error(
                exc, where="POP3 connect", server=f"{s.host}:{s.port}"
            ) from exc

    def _login(self) -> None:
        s = self.settings
        assert self.conn is not None
        try:
            if s.token_provider is not None:
                self._xoauth2(s.username, s.token_provider())
            else:
                self.conn.user(s.username)
                self.conn.pass_(s.password)
        except poplib.error_proto as exc:
            raise auth_error(str(exc.args[0] if exc.args else exc)) from exc

    def _xoauth2(self, username: str, token: str) -> None:
        """AUTH XOAUTH2 with an initial response (RFC 5034); an error challenge is
        answered with an empty line so the server sends its -ERR."""
        assert self.conn is not None
        initial = base64.b64encode(xoauth2_string(username, token)).decode()
        # _shortcmd is poplib's private command helper, absent from typeshed.
        resp = self.conn._shortcmd(f"AUTH XOAUTH2 {initial}")  # type: ignore[attr-defined]
        if not resp.startswith(b"+OK"):
            self.conn._shortcmd("")  # type: ignore[attr-defined]

    def quit(self) -> None:
        """QUIT, which makes the server carry out the deletions; raises if it fails
        (then nothing was deleted)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                self._call("QUIT", conn.quit)
            finally:
                conn.close()

    def close(self, *, commit: bool = True) -> None:
        """QUIT (deletions happen) or just drop the connection; never raises."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if commit:
                conn.quit()
        except Exception:  # noqa: S110 - closing below is all that is left to do
            pass
        finally:
            conn.close()

    def _call(
        self, what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            return func(*args, **kwargs)
        except MailServerError:
            raise
        except poplib.error_proto as exc:
            raise ServerConfigError(
                _("The POP3 server refused %(cmd)s: %(err)s")
                % {"cmd": what, "err": exc},
                detail=str(exc),
            ) from exc
        except Exception as exc:
            raise translate_error(
                exc, where=f"POP3 {what}", server=self._server
            ) from exc

    # -- reading -----------------------------------------------------------------
    def listing(self) -> list[Pop3Entry]:
        """Every message in the maildrop with its UIDL and size."""
        assert self.conn is not None
        _, uidl_lines, _ = self._call("UIDL", self.conn.uidl)
        _, list_lines, _ = self._call("LIST", self.conn.list)
        sizes = {}
        for line in list_lines:
            number, size = line.split()[:2]
            sizes[int(number)] = int(size)
        entries = []
        for line in uidl_lines:
            number_text, uidl = line.decode("ascii", errors="replace").split()[:2]
            entries.append(
                Pop3Entry(int(number_text), uidl, sizes.get(int(number_text), 0))
            )
        self._by_uidl = {entry.uidl: entry for entry in entries}
        return entries

    def iter_batches(
        self, entries: Iterable[Pop3Entry]
    ) -> Iterator[list[RemoteMessage]]:
        """Retrieve ``entries`` in batches; oversized ones come with headers only."""
        batch: list[RemoteMessage] = []
        for entry in entries:
            batch.append(self._retrieve(entry))
            if len(batch) >= self.batch_messages or batch[-1].is_oversize:
                yield batch
                batch = []
        if batch:
            yield batch

    def _retrieve(self, entry: Pop3Entry) -> RemoteMessage:
        assert self.conn is not None
        if entry.size > self.max_message_bytes:
            _, lines, _ = self._call("TOP", self.conn.top, entry.number, 0)
            headers = header_block(b"\r\n".join(lines) + b"\r\n")
            return RemoteMessage(entry.uidl, entry.size, None, headers[:65536])
        _, lines, _ = self._call("RETR", self.conn.retr, entry.number)
        # poplib has already undone dot-stuffing; restore CRLF line ends.
        return RemoteMessage(entry.uidl, entry.size, b"\r\n".join(lines) + b"\r\n")

    # -- after store ---------------------------------------------------------------
    def apply_after_store(self, uidls: Iterable[str], *, action: str) -> None:
        """Mark committed messages for deletion (done by the server at QUIT)."""
        if action == KEEP:
            return
        if action != DELETE:
            raise ServerConfigError(_("POP3 can only keep or delete stored mail."))
        assert self.conn is not None
        for uidl in uidls:
            entry = self._by_uidl.get(uidl)
            if entry is not None:
                self._call("DELE", self.conn.dele, entry.number)
