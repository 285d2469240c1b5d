"""Poll incoming mail servers (IMAP/POP3) into the routing pipeline, exactly once.

Invariants:
- One poll per server at a time: a 90-second lease on the server row, claimed by a
  conditional UPDATE (same on SQLite and PostgreSQL), renewed by a heartbeat thread
  while the poll runs, so it expires within two minutes of a crash anywhere.
- A message is committed (routed + its ``FetchedMessage`` row, in one transaction
  with the others of its short group) *before* any flag, move or delete reaches
  the server. A crash in between leaves
  ``action_pending`` rows that the next poll finishes without routing them again.
- A UIDVALIDITY change re-lists the folder but dedupes by raw SHA-256 / Message-ID.
- A failure is stored on the server and re-raised (see ``incoming_connect``); one
  server's failure never affects the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import secrets
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from knowlix.bulk import insert_instances
from mailservers.errors import (
    MailServerError,
    TransientError,
)
from mailservers.incoming import RemoteMessage, extract_message_id
from mailservers.incoming.imap import ImapFetcher
from mailservers.incoming.pop3 import Pop3Fetcher
from mailservers.models import FetchedMessage, IncomingServer
from mailservers.services import incoming_notify, lease_owner
from mailservers.services.heartbeat import Heartbeat
from mailservers.services.incoming_connect import (
    FAILURES_BEFORE_ATTENTION,
    open_fetcher,
    record_failure,
    record_success,
)
from routing import services as routing_services
from routing.errors import ParseError
from routing.parsing import ParsedMessage

logger = logging.getLogger(__name__)

# A poll's lease: renewed every HEARTBEAT_SECONDS by a heartbeat thread (and after
# each batch), so it ends within LEASE of its owner's death wherever that ran.
LEASE = dt.timedelta(seconds=90)
HEARTBEAT_SECONDS = 20.0
# A group of fetched messages is routed and committed together (see _store_all).
GROUP_MESSAGES = 100
GROUP_BYTES = 16 * 1024 * 1024
Server = IncomingServer
# A batch's messages parsed ahead (``_parsed_ahead``), by key (UID or UIDL).
Parsed = dict[int | str, ParsedMessage | ParseError]


class PollLeaseLost(TransientError):
    """Our lease expired and another poll took the server over: stop quietly."""


@dataclass
class PollResult:
    """What a poll did with each message it fetched, by routing's outcome."""

    stored: int = 0  # routed: posted on a record (or a bounce recorded)
    duplicate: int = 0  # the same message was stored before (another copy)
    quarantined: int = 0  # kept in Unprocessed mail for a person to decide
    refused: int = 0  # deliberately not posted (sender refused, loop protection)
    known: int = 0  # already in this server's ledger: finished after a crash
    oversize: int = 0
    skipped: bool = False  # another poll holds the server

    def counts(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "duplicate": self.duplicate,
            "quarantined": self.quarantined,
            "refused": self.refused,
            "known": self.known,
            "oversize": self.oversize,
        }

    def count_outcome(self, outcome: str) -> None:
        """Tally one routed message by its ``InboundMail.Outcome`` value."""
        if outcome == "duplicate":
            self.duplicate += 1
        elif outcome == "quarantined":
            self.quarantined += 1
        elif outcome in ("refused", "ignored"):
            self.refused += 1
        else:  # routed, bounce (or received: stored, routing to finish)
            self.stored += 1


def parse_messages(*, messages: list[RemoteMessage]) -> Parsed:
    """The fetched messages parsed by routing (pure: no database, no network), by
    key; run in the parse-ahead thread (``_parsed_ahead``)."""
    fetched = [m for m in messages if m.raw is not None]
    results = routing_services.parse_messages([m.raw for m in fetched if m.raw])
    return {m.key: r for m, r in zip(fetched, results, strict=True)}


def prepare_messages(
    *,
    raws: list[bytes],
    server: IncomingServer,
    parsed: list[ParsedMessage | ParseError] | None = None,
) -> routing_services.PreparedMessages:
    """Parse a group (unless ``parsed`` ahead) and check its senders, before its
    transaction (DNS waits)."""
    return routing_services.prepare_messages(raws=raws, server=server, parsed=parsed)


def route_messages(
    *,
    raws: list[bytes],
    server: IncomingServer,
    prepared: routing_services.PreparedMessages | None = None,
) -> list[str]:
    """Hand a group of messages to the routing pipeline, in order, written together
    where they can be (call inside a transaction); returns each one's outcome.
    ``prepared``: see ``prepare_messages``."""
    results = routing_services.route_incoming_messages(
        raws=raws, source=f"{server.kind}:{server.pk}", server=server, prepared=prepared
    )
    return [result.outcome for result in results]


def after_store_action(server: IncomingServer) -> str:
    """The action to apply; POP3 can only keep or delete."""
    if server.is_imap or server.after_store == Server.AfterStore.DELETE:
        return server.after_store
    return Server.AfterStore.KEEP


# --- Lease --------------------------------------------------------------------------


def claim_poll(*, server: IncomingServer) -> str | None:
    """The lease token if this caller won the server, None if a poll is running.

    A lease still running is taken over when the process holding it ran on this
    machine and is gone (a worker killed mid-poll): no need to wait for it to
    expire. The conditional UPDATEs make two callers never both win; times come
    from the database's clock, so that workers' clocks need not agree."""
    token = secrets.token_hex(16)
    claim = {
        "poll_token": token,
        "poll_owner": lease_owner.current_owner(),
        "poll_lease_until": _lease_end(),
        "poll_started_at": Now(),
        "poll_done": 0,
        "poll_total": 0,
    }
    if Server.objects.filter(_lease_free(), pk=server.pk).update(**claim) == 1:
        return token
    held = Server.objects.filter(pk=server.pk).values("poll_token", "poll_owner")
    row = held.first()
    if row is None or not lease_owner.is_dead(row["poll_owner"]):
        return None
    taken = Server.objects.filter(
        pk=server.pk, poll_token=row["poll_token"], poll_owner=row["poll_owner"]
    ).update(**claim)
    if taken != 1:
        return None
    logger.warning(
        "Incoming server %s: took over the lease of a dead poll (%s)",
        server.pk,
        row["poll_owner"],
    )
    return token


def _lease_end() -> CombinedExpression:
    return CombinedExpression(Now(), "+", Value(LEASE), output_field=DateTimeField())


def _lease_free() -> Q:
    """No lease, or an expired one (by the database's clock)."""
    return Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=Now())


def _keep_lease(server_id: int, token: str) -> bool:
    """The heartbeat's renewal: True while the lease is still ours."""
    held = Server.objects.filter(pk=server_id, poll_token=token)
    return held.update(poll_lease_until=_lease_end()) == 1


def _renew(server: IncomingServer, token: str, **progress: int) -> None:
    renewed = Server.objects.filter(pk=server.pk, poll_token=token).update(
        poll_lease_until=_lease_end(), **progress
    )
    if renewed != 1:
        raise PollLeaseLost(_("Another poll took this server over."))


def _release(server: IncomingServer, token: str, result: PollResult) -> None:
    """End the lease; what the poll did is kept for the server's page."""
    counts = result.counts()
    if any(counts.values()):
        logger.info("Incoming server %s: %s", server.pk, counts)
    Server.objects.filter(pk=server.pk, poll_token=token).update(
        poll_token="",
        poll_owner="",
        poll_lease_until=None,
        # When this poll started: the interval runs from start to start.
        last_poll_at=F("poll_started_at"),
        last_poll_counts=counts,
    )


# --- Polling ------------------------------------------------------------------------


def poll_incoming_server(*, server: IncomingServer) -> PollResult:
    """Fetch everything new from ``server`` into routing, then apply the after-store
    action. Failures are stored on the server and re-raised (``MailServerError``)."""
    token = claim_poll(server=server)
    if token is None:
        return PollResult(skipped=True)
    server.refresh_from_db()  # the position a previous poll left, not a stale copy
    result = PollResult()
    renew = functools.partial(_keep_lease, server.pk, token)
    name = f"poll-lease-{server.pk}"
    try:
        with Heartbeat(renew, every=HEARTBEAT_SECONDS, name=name):
            fetcher = open_fetcher(server)
            try:
                if isinstance(fetcher, ImapFetcher):
                    _poll_imap(server, fetcher, token, result)
                else:
                    _poll_pop3(server, fetcher, token, result)
            finally:
                fetcher.close()
    except PollLeaseLost:
        logger.warning("Incoming server %s: lease lost mid-poll", server.pk)
        return result
    except MailServerError as exc:
        record_failure(server, exc)
        raise
    except Exception as exc:  # a bug or a database fault: stored, then re-raised
        record_failure(
            server,
            TransientError(
                _("Unexpected error: %s") % type(exc).__name__, detail=repr(exc)
            ),
        )
        raise
    finally:
        _release(server, token, result)
    record_success(server)
    return result


def _poll_imap(
    server: IncomingServer, fetcher: ImapFetcher, token: str, result: PollResult
) -> None:
    state = fetcher.state
    assert state is not None
    action = after_store_action(server)
    resync = False
    if server.uidvalidity != state.uidvalidity:
        # First poll, a new folder, or the server renumbered it: start over, but
        # recognise what was already stored instead of importing it again.
        resync = server.fetched_messages.exists()
        Server.objects.filter(pk=server.pk).update(
            uidvalidity=state.uidvalidity, last_uid=0
        )
        # Actions pending under the old UIDs can no longer be applied by UID; the
        # messages are recognised below and get the action again.
        FetchedMessage.objects.filter(server=server, action_pending=True).update(
            action_pending=False
        )
        server.uidvalidity, server.last_uid = state.uidvalidity, 0
    else:
        _finish_pending_imap(server, fetcher)
    total = max(0, min(state.exists, state.uidnext - 1 - server.last_uid))
    done = 0
    _renew(server, token, poll_total=total, poll_done=0)
    batches = fetcher.iter_batches(after_uid=server.last_uid)
    for batch, parsed in _parsed_ahead(batches):
        keys = [m.key for m in batch if isinstance(m.key, int)]  # IMAP keys: UIDs
        # Recorded by a poll that died before flagging (or before moving last_uid).
        recorded = FetchedMessage.objects.filter(
            server=server, uidvalidity=state.uidvalidity, uid__in=keys
        ).values_list("uid", "state")
        states: dict[int | str, str] = {
            uid: row_state for uid, row_state in recorded if uid is not None
        }
        result.known += len(states)
        fresh = [m for m in batch if m.key not in states]
        states.update(_store_all(server, fresh, result, resync=resync, parsed=parsed))
        to_apply = [k for k in keys if states[k] != FetchedMessage.State.OVERSIZE]
        server.last_uid = max(keys)
        done += len(batch)
        # One statement (one commit): the position, the progress, the lease.
        _renew(
            server,
            token,
            last_uid=server.last_uid,
            poll_done=done,
            poll_total=max(total, done),
        )
        if action != Server.AfterStore.KEEP and to_apply:
            fetcher.apply_after_store(
                to_apply, action=action, move_to=server.move_to_folder
            )
            FetchedMessage.objects.filter(
                server=server, uidvalidity=state.uidvalidity, uid__in=to_apply
            ).update(action_pending=False)


def _finish_pending_imap(server: IncomingServer, fetcher: ImapFetcher) -> None:
    """Apply the action to messages stored by a poll that died before flagging."""
    pending = FetchedMessage.objects.filter(
        server=server, uidvalidity=server.uidvalidity, action_pending=True
    )
    uids = [
        uid for uid in pending.values_list("uid", flat=True)[:5000] if uid is not None
    ]
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        fetcher.apply_after_store(
            chunk, action=server.after_store, move_to=server.move_to_folder
        )
        pending.filter(uid__in=chunk).update(action_pending=False)


def _poll_pop3(
    server: IncomingServer, fetcher: Pop3Fetcher, token: str, result: PollResult
) -> None:
    action = after_store_action(server)
    entries = fetcher.listing()
    rows = _known_uidls(server, [e.uidl for e in entries])
    # Stored before but not yet deleted (a crash, or a connection lost before QUIT).
    pending = [uidl for uidl, is_pending in rows.items() if is_pending]
    if action == Server.AfterStore.DELETE and pending:
        fetcher.apply_after_store(pending, action=action)
    new = [e for e in entries if e.uidl not in rows]
    result.known += len(entries) - len(new)
    _renew(server, token, poll_total=len(new), poll_done=0)
    done = 0
    for batch, parsed in _parsed_ahead(fetcher.iter_batches(new)):
        states = _store_all(server, batch, result, resync=True, parsed=parsed)
        stored = [  # POP3 keys: UIDLs
            k
            for k, state in states.items()
            if isinstance(k, str) and state != FetchedMessage.State.OVERSIZE
        ]
        done += len(batch)
        _renew(server, token, poll_done=done, poll_total=len(new))
        if action == Server.AfterStore.DELETE:
            fetcher.apply_after_store(stored, action=action)
    # Deletions happen at QUIT; only then are they no longer pending.
    fetcher.quit()
    if action == Server.AfterStore.DELETE:
        FetchedMessage.objects.filter(server=server, action_pending=True).update(
            action_pending=False
        )


def _known_uidls(server: IncomingServer, uidls: list[str]) -> dict[str, bool]:
    known: dict[str, bool] = {}
    for start in range(0, len(uidls), 500):
        chunk = uidls[start : start + 500]
        rows = FetchedMessage.objects.filter(server=server, uidl__in=chunk)
        known.update(rows.values_list("uidl", "action_pending"))
    return known


def _parsed_ahead(
    batches: Iterable[list[RemoteMessage]],
) -> Iterator[tuple[list[RemoteMessage], Parsed]]:
    """Each batch with its messages parsed, the next one already fetched and being
    parsed in a worker thread while the caller stores this one: the caller's
    writes mostly wait on the database (or its file), and the parse, pure CPU, runs
    meanwhile. Parsing writes nothing, so what is committed, in which order, and
    before which flag, is unchanged. At most two batches are held. A fetch that
    fails hands on the batch before it first, as a poll without look-ahead would
    have stored it."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-ahead")
    try:
        pending: tuple[list[RemoteMessage], Future[Parsed]] | None = None
        iterator = iter(batches)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                break
            except Exception:
                if pending is not None:
                    yield pending[0], pending[1].result()
                raise
            ahead = (batch, pool.submit(_parse_batch, batch))
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = ahead
        if pending is not None:
            yield pending[0], pending[1].result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _parse_batch(batch: list[RemoteMessage]) -> Parsed:
    return parse_messages(messages=batch)  # looked up at each call (the benchmark)


def _store_all(
    server: IncomingServer,
    messages: list[RemoteMessage],
    result: PollResult,
    *,
    resync: bool,
    parsed: Parsed | None = None,
) -> dict[int | str, str]:
    """Store messages in groups of up to ``GROUP_MESSAGES`` (or ``GROUP_BYTES``),
    one transaction each: one commit (an fsync on PostgreSQL) per group instead of
    per message, while other writers never wait long. A group is routed and
    recorded together (``route_messages``); if recording it fails because another
    poll recorded one of its messages meanwhile, the group is stored again one
    message at a time, each in its own savepoint."""
    states: dict[int | str, str] = {}
    group: list[RemoteMessage] = []
    size = 0
    for message in messages:
        group.append(message)
        size += len(message.raw or b"")
        if len(group) >= GROUP_MESSAGES or size >= GROUP_BYTES:
            states.update(
                _store_group(server, group, result, resync=resync, parsed=parsed)
            )
            group, size = [], 0
    if group:
        states.update(_store_group(server, group, result, resync=resync, parsed=parsed))
    return states


def _store_group(
    server: IncomingServer,
    messages: list[RemoteMessage],
    result: PollResult,
    *,
    resync: bool,
    parsed: Parsed | None = None,
) -> dict[int | str, str]:
    rows = [_ledger_row(server, message) for message in messages]
    if resync:  # recognise what was stored before the renumbering (one read)
        known = _seen_before_many(server, [r for r in rows if r.sha256])
        for row in rows:
            if row.sha256 in known or (row.message_id and row.message_id in known):
                row.state = FetchedMessage.State.KNOWN
            if row.sha256:  # and a copy later in the group, as _store would
                known |= {row.sha256, row.message_id} - {""}
    to_route = [
        message
        for message, row in zip(messages, rows, strict=True)
        if row.state == FetchedMessage.State.STORED and message.raw is not None
    ]
    stored = [message.raw for message in to_route if message.raw is not None]
    ahead = None
    if parsed is not None and all(m.key in parsed for m in to_route):
        ahead = [parsed[m.key] for m in to_route]
    prepared = None
    if stored:
        prepared = prepare_messages(raws=stored, server=server, parsed=ahead)
    outcomes: list[str] = []
    try:
        with transaction.atomic():
            if stored:
                outcomes = route_messages(raws=stored, server=server, prepared=prepared)
            insert_instances(rows)
            for row in rows:
                if row.state == FetchedMessage.State.OVERSIZE:
                    incoming_notify.notify_oversize(
                        server=server, size=row.size, summary=row.summary
                    )
    except IntegrityError:
        # Another poll recorded some of these meanwhile (its work stands, ours was
        # rolled back): one at a time (groups of one), each finding out whether it
        # is among them.
        if len(messages) > 1:
            with transaction.atomic():
                states: dict[int | str, str] = {}
                for message in messages:
                    states |= _store_group(
                        server, [message], result, resync=resync, parsed=parsed
                    )
                return states
        # Anything else is a real fault (never flag unrecorded mail).
        where = _ledger_key(server, messages[0])
        if not FetchedMessage.objects.filter(server=server, **where).exists():
            raise
        result.known += 1
        return {messages[0].key: FetchedMessage.State.KNOWN}
    for row in rows:
        _tally(result, row.state)
    for outcome in outcomes:
        result.count_outcome(outcome)
    return {row.uid if row.uid is not None else row.uidl: row.state for row in rows}


def _tally(result: PollResult, state: str) -> None:
    """Count the ledger rows that routing never saw (routed ones count by outcome)."""
    if state == FetchedMessage.State.OVERSIZE:
        result.oversize += 1
    elif state == FetchedMessage.State.KNOWN:
        result.known += 1


def _ledger_key(
    server: IncomingServer, message: RemoteMessage
) -> dict[str, int | str | None]:
    """What identifies a fetched message in the ledger: UIDVALIDITY + UID, or UIDL."""
    if isinstance(message.key, int):
        return {"uidvalidity": server.uidvalidity, "uid": message.key}
    return {"uidl": message.key}


def _ledger_row(server: IncomingServer, message: RemoteMessage) -> FetchedMessage:
    """The unsaved ``FetchedMessage`` of a fetched message."""
    row = FetchedMessage(
        server=server, size=message.size, **_ledger_key(server, message)
    )
    if message.raw is None:
        row.state = FetchedMessage.State.OVERSIZE
        row.summary = incoming_notify.summarize_headers(message.headers)
    else:
        row.sha256 = hashlib.sha256(message.raw).hexdigest()
        row.message_id = extract_message_id(message.raw)
        row.action_pending = after_store_action(server) != Server.AfterStore.KEEP
    return row


def _seen_before_many(server: IncomingServer, rows: list[FetchedMessage]) -> set[str]:
    """The digests and Message-IDs among ``rows`` that this server stored before."""
    digests = [row.sha256 for row in rows]
    ids = [row.message_id for row in rows if row.message_id]
    found = FetchedMessage.objects.filter(
        Q(sha256__in=digests) | Q(message_id__in=ids), server=server
    ).values_list("sha256", "message_id")
    return {value for pair in found for value in pair if value}


# --- Scheduling ---------------------------------------------------------------------


def due_servers() -> Iterable[IncomingServer]:
    """Confirmed (or flagged, so they recover) servers whose interval has passed."""
    servers = Server.objects.filter(
        state__in=[Server.State.CONFIRMED, Server.State.NEEDS_ATTENTION]
    )
    free = _lease_free()
    # A lease held by a dead process of this machine does not wait to expire.
    abandoned = [
        s.pk
        for s in servers.exclude(free).only("pk", "poll_owner")
        if lease_owner.is_dead(s.poll_owner)
    ]
    return [s for s in servers.filter(free | Q(pk__in=abandoned)) if s.is_due]


def reset_position(*, server: IncomingServer) -> None:
    """Forget the IMAP position (after the host, user or folder changed); what was
    stored before is still recognised by hash/Message-ID."""
    Server.objects.filter(pk=server.pk).update(uidvalidity=None, last_uid=0)
    server.uidvalidity, server.last_uid = None, 0


__all__ = [
    "FAILURES_BEFORE_ATTENTION",
    "PollResult",
    "claim_poll",
    "due_servers",
    "poll_incoming_server",
    "reset_position",
]
