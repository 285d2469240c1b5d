"""IMAP fetcher over imapclient: UIDVALIDITY + UID tracking, bounded batches, size cap.

Free of the ORM: ``iter_batches(after_uid=...)`` yields lists of ``RemoteMessage``
(UID order) and ``apply_after_store(uids)`` flags/moves/deletes them. The caller
commits each batch before calling ``apply_after_store``; nothing here marks a message
seen on its own (bodies are read with ``BODY.PEEK[]``). UIDs are listed with
``UID SEARCH`` over bounded UID windows, so a huge folder never produces an answer
longer than imaplib's line limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from django.utils.translation import gettext as _
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailservers.errors import MailServerError, ServerConfigError
from mailservers.incoming import (
    SSL,
    STARTTLS,
    ConnectionSettings,
    RemoteMessage,
    auth_error,
    translate_error,
)

KEEP, MARK_SEEN, MOVE, DELETE = "keep", "seen", "move", "delete"
SEEN, DELETED = b"\\Seen", b"\\Deleted"

# The arguments and the result of a call passed through _call.
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int
    exists: int


class ImapFetcher:
    """One logged-in IMAP session on one folder; use as a context manager."""

    #: UIDs covered by one ``UID SEARCH`` (bounds the answer's length).
    search_window = 2000
    #: Most messages and bytes fetched in one round trip (bounds memory).
    batch_messages = 100
    batch_bytes = 8 * 1024 * 1024

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        folder: str = "INBOX",
        max_message_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        self.settings = settings
        self._server = f"{settings.host}:{settings.port}"  # named in every error
        self.folder = folder or "INBOX"
        self.max_message_bytes = max_message_bytes
        self.client: IMAPClient | None = None
        self.state: FolderState | None = None

    # -- session -----------------------------------------------------------------
    def __enter__(self) -> ImapFetcher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> FolderState:
        """Connect, log in and select the folder (read-write)."""
        s = self.settings
        try:
            self.client = IMAPClient(
                s.host,
                port=s.port,
                ssl=s.security == SSL,
                ssl_context=s.make_ssl_context() if s.security == SSL else None,
                timeout=s.timeout,
            )
            if s.security == STARTTLS:
                if not self.client.has_capability("STARTTLS"):
                    raise ServerConfigError(
                        _("The server does not offer STARTTLS on this port.")
                    )
                self.client.starttls(ssl_context=s.make_ssl_context())
            self._login()
            return self.select()
        except MailServerError:
            self.close()
            raise
        except Exception as exc:  # socket, TLS, protocol: translated, then raised
            self.close()
            raise translate_error(
                exc, where="IMAP connect", server=f"{s.host}:{s.port}"
            ) from exc

    def _login(self) -> None:
        s = self.settings
        assert self.client is not None
        try:
            if s.token_provider is not None:
                self.client.oauth2_login(s.username, s.token_provider())
            else:
                self.client.login(s.username, s.password)
        except LoginError as exc:
            if isinstance(exc.__context__, IMAPClientAbortError):  # connection died
                raise translate_error(
                    exc.__context__, where="IMAP login", server=self._server
                ) from exc
            raise auth_error(str(exc)) from exc

    def select(self) -> FolderState:
        assert self.client is not None
        try:
            info = self.client.select_folder(self.folder)
        except IMAPClientAbortError as exc:  # the connection, not the folder
            raise translate_error(
                exc, where="IMAP SELECT", server=self._server
            ) from exc
        except IMAPClientError as exc:
            raise ServerConfigError(
                _("The folder %(folder)s cannot be opened: %(err)s")
                % {"folder": self.folder, "err": exc},
                detail=str(exc),
            ) from exc
        uidvalidity = int(info.get(b"UIDVALIDITY") or 0)
        uidnext = info.get(b"UIDNEXT")
        if uidnext is None:  # optional in RFC 3501: derive it from the last message
            last = self.client.search(["UID", "*"]) if info.get(b"EXISTS") else []
            uidnext = max(last, default=0) + 1
        self.state = FolderState(uidvalidity, int(uidnext), int(info.get(b"EXISTS", 0)))
        return self.state

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # already broken: drop the socket quietly
            with contextlib.suppress(Exception):  # nothing to report on a dead socket
                client.shutdown()

    # -- reading -----------------------------------------------------------------------
    def _call(
        self, what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one imapclient call, translating failures into our errors."""
        try:
            return func(*args, **kwargs)
        except MailServerError:
            raise
        except Exception as exc:
            raise translate_error(
                exc, where=f"IMAP {what}", server=self._server
            ) from exc

    def list_uids(self, *, after_uid: int) -> Iterator[int]:
        """UIDs above ``after_uid`` (up to UIDNEXT at select time), ascending."""
        assert self.client is not None and self.state is not None
        start = after_uid + 1
        while start < self.state.uidnext:
            end = min(start + self.search_window - 1, self.state.uidnext - 1)
            found = self._call("SEARCH", self.client.search, ["UID", f"{start}:{end}"])
            yield from sorted(uid for uid in found if start <= uid <= end)
            start = end + 1

    def iter_batches(self, *, after_uid: int) -> Iterator[list[RemoteMessage]]:
        """Messages above ``after_uid`` in bounded batches; oversized ones come with
        their headers only (``raw is None``)."""
        chunk: list[int] = []
        for uid in self.list_uids(after_uid=after_uid):
            chunk.append(uid)
            if len(chunk) == self.batch_messages:
                yield from self._fetch_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._fetch_chunk(chunk)

    def _fetch_chunk(self, uids: list[int]) -> Iterator[list[RemoteMessage]]:
        assert self.client is not None
        sizes = self._call("FETCH sizes", self.client.fetch, uids, ["RFC822.SIZE"])
        batch: list[tuple[int, int]] = []
        batch_bytes = 0
        for uid in uids:
            if uid not in sizes:  # expunged meanwhile
                continue
            size = int(sizes[uid].get(b"RFC822.SIZE", 0))
            if size > self.max_message_bytes:
                if batch:
                    yield self._fetch_bodies(batch)
                    batch, batch_bytes = [], 0
                yield [self._fetch_oversize(uid, size)]
                continue
            if batch and batch_bytes + size > self.batch_bytes:
                yield self._fetch_bodies(batch)
                batch, batch_bytes = [], 0
            batch.append((uid, size))
            batch_bytes += size
        if batch:
            yield self._fetch_bodies(batch)

    def _fetch_bodies(self, batch: list[tuple[int, int]]) -> list[RemoteMessage]:
        assert self.client is not None
        data = self._call(
            "FETCH bodies",
            self.client.fetch,
            [uid for uid, _ in batch],
            ["BODY.PEEK[]"],
        )
        messages = []
        for uid, size in batch:
            raw = data.get(uid, {}).get(b"BODY[]")
            if raw is not None:  # None: expunged by someone else meanwhile
                messages.append(RemoteMessage(key=uid, size=size, raw=raw))
        return messages

    def _fetch_oversize(self, uid: int, size: int) -> RemoteMessage:
        assert self.client is not None
        data = self._call(
            "FETCH header", self.client.fetch, [uid], ["BODY.PEEK[HEADER]"]
        )
        headers = data.get(uid, {}).get(b"BODY[HEADER]") or b""
        return RemoteMessage(key=uid, size=size, raw=None, headers=headers[:65536])

    # -- after store -------------------------------------------------------------------
    def apply_after_store(
        self, uids: Sequence[int], *, action: str, move_to: str = ""
    ) -> None:
        """Flag, move or delete messages already committed by the caller."""
        if not uids or action == KEEP:
            return
        assert self.client is not None
        uids = list(uids)
        if action == MARK_SEEN:
            self._call("STORE", self.client.add_flags, uids, [SEEN])
        elif action == DELETE:
            self._call("STORE", self.client.add_flags, uids, [DELETED])
            self._expunge(uids)
        elif action == MOVE:
            self._move(uids, move_to)
        else:
            raise ServerConfigError(_("Unknown after-store action %r.") % action)

    def _move(self, uids: list[int], folder: str) -> None:
        assert self.client is not None
        if not folder:
            raise ServerConfigError(_("No folder was set to move stored mail to."))
        self.ensure_folder(folder)
        if self.client.has_capability("MOVE"):
            self._call("MOVE", self.client.move, uids, folder)
            return
        self._call("COPY", self.client.copy, uids, folder)
        self._call("STORE", self.client.add_flags, uids, [DELETED])
        self._expunge(uids)

    def _expunge(self, uids: list[int]) -> None:
        assert self.client is not None
        if self.client.has_capability("UIDPLUS"):
            self._call("UID EXPUNGE", self.client.uid_expunge, uids)
        else:
            self._call("EXPUNGE", self.client.expunge)

    def ensure_folder(self, folder: str) -> None:
        assert self.client is not None
        if not self._call("LIST", self.client.folder_exists, folder):
            self._call("CREATE", self.client.create_folder, folder)
