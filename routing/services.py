"""Route incoming messages: the one pipeline every entry point goes through.

``route_incoming_messages`` routes a group of messages in order (a single message
is a group of one): the pollers, ``manage.py route_email``, the mail catcher, the
Local mailbox and *Reprocess* all enter here. The group is cut into *segments* of
messages that cannot see each other's writes (see ``_segments``); for each segment
the raw bytes are stored first (``InboundMail``, unique by sha256, committed before
routing when no caller's transaction is open), then every message is decided by the
rules of ``routing.routes`` with reads shared by the segment (``routing.reads``),
then the plans are written in bulk (``routing.writes``) in one savepoint. If that
fails, the segment's messages are routed one at a time, so that a bad message is
quarantined alone with the reason and never blocks the next one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from knowlix.models import normalize_email
from knowlix.records import record_label
from routing import matching
from routing.aliases import report_alias_problem
from routing.authenticity import Verdict, sender_verdict, user_addresses
from routing.errors import ParseError, RoutingConfigError, RoutingError
from routing.models import InboundMail, UnprocessedMail
from routing.parsing import ParsedMessage, parse_message
from routing.reads import SAME_BYTES, GroupReads, duplicate_reasons
from routing.routes import IncomingServerLike, Router, SegmentConflict
from routing.writes import Decided, write_plans

logger = logging.getLogger(__name__)
Outcome = InboundMail.Outcome
INTERRUPTED_AFTER_MINUTES = 10  # routing one message never takes that long


@dataclass
class Route:
    action: str  # "created" | "posted"
    record: str  # "knowlix.ticket:42"
    message: int

    def as_dict(self) -> dict[str, str | int]:
        return {"action": self.action, "record": self.record, "message": self.message}


@dataclass
class RoutingResult:
    outcome: str
    routes: list[Route] = field(default_factory=list)
    reason: str = ""
    inbound_id: int | None = None

    def as_json(self) -> dict:
        data: dict = {
            "outcome": str(self.outcome),
            "routes": [r.as_dict() for r in self.routes],
        }
        if self.outcome != Outcome.ROUTED:
            data["reason"] = self.reason
        return data


@dataclass
class Incoming:
    """One message of a group, from its bytes to its result."""

    raw: bytes
    sha256: str
    parsed: ParsedMessage | None
    error: ParseError | None = None
    verdict: Verdict | None = None
    inbound: InboundMail | None = None  # stored (or given, to reprocess)
    result: RoutingResult | None = None

    @property
    def keys(self) -> set[str]:
        """What makes another message its duplicate."""
        keys = {self.sha256}
        if self.parsed is not None:
            if self.parsed.has_message_id:
                keys.add(self.parsed.message_id)
            if self.parsed.knowlix_message_id:
                keys.add(self.parsed.knowlix_message_id)
        return keys


@dataclass
class PreparedMessages:
    """Messages parsed and their senders checked, before any write."""

    raws: Sequence[bytes]
    items: list[Incoming]


def parse_messages(raws: Sequence[bytes]) -> list[ParsedMessage | ParseError]:
    """Each message parsed, or why it cannot be (pure: no database, no network,
    nothing shared but immutable caches), so a caller may parse the next group in
    a worker thread while it writes this one (the pollers do)."""
    results: list[ParsedMessage | ParseError] = []
    for raw in raws:
        try:
            results.append(parse_message(raw))
        except ParseError as exc:
            results.append(exc)
    return results


def prepare_messages(
    *,
    raws: Sequence[bytes],
    server: IncomingServerLike | None = None,
    parsed: Sequence[ParsedMessage | ParseError] | None = None,
) -> PreparedMessages:
    """Parse the messages and check their senders (a DKIM check may wait on DNS):
    call outside the transaction that routes them, so that it stays short.
    ``parsed``: :func:`parse_messages` of the same ``raws``, done before."""
    if parsed is None:
        parsed = parse_messages(raws)
    assert len(parsed) == len(raws)
    items = [
        Incoming(raw, "", result)
        if isinstance(result, ParsedMessage)
        else Incoming(raw, hashlib.sha256(raw).hexdigest(), None, result)
        for raw, result in zip(raws, parsed, strict=True)
    ]
    senders = [item.parsed.from_address for item in items if item.parsed]
    users = user_addresses(senders)  # one read for the group
    for item in items:
        if item.parsed is not None:
            item.sha256 = item.parsed.sha256
            item.verdict = sender_verdict(item.parsed, item.raw, users=users)
    return PreparedMessages(raws=raws, items=items)


def route_incoming_messages(
    *,
    raws: Sequence[bytes],
    source: str,
    server: IncomingServerLike | None = None,
    prepared: PreparedMessages | None = None,
    stored: Sequence[InboundMail] = (),
) -> list[RoutingResult]:
    """Store and route ``raws`` in order; one result each, never raises on bad
    mail. Call inside a transaction to commit them together (the pollers do, with
    their ledger). ``prepared``: :func:`prepare_messages` of the same ``raws``, done
    before. ``stored``: the rows the ``raws`` are already stored in (to reprocess
    quarantined mail: not checked for duplicates, their quarantine ends when
    routed)."""
    if prepared is None:
        prepared = prepare_messages(raws=raws, server=server)
    assert len(prepared.raws) == len(raws)
    items = prepared.items
    for item, row in zip(items, stored, strict=False):
        item.inbound = row
    reprocess = bool(stored)
    for segment in _segments(items):
        new = [item for item in segment if item.inbound is None]
        if new:
            _store(new, source=source, server=server)
        todo = [item for item in segment if item.result is None]
        while todo:
            todo = todo[_route_stored(todo, server, reprocess=reprocess) :]
    results = [item.result for item in items]
    assert all(r is not None for r in results)  # every message has its result
    return [r for r in results if r is not None]


def route_incoming_message(
    *, raw: bytes, source: str, server: IncomingServerLike | None = None
) -> RoutingResult:
    """Route one message: a group of one (:func:`route_incoming_messages`)."""
    return route_incoming_messages(raws=[raw], source=source, server=server)[0]


def _segments(items: list[Incoming]) -> Iterator[list[Incoming]]:
    """Cut the group where a message must see the writes of the ones before it:
    a copy of an earlier one (a duplicate), mail from an address an earlier one
    named in To/Cc (its contact is linked to that mail one by one), and mail that
    is a reply or a bounce (it finds its thread, or marks what it names) goes in a
    segment of its own."""
    segment: list[Incoming] = []
    keys: set[str] = set()
    named: set[str] = set()
    for item in items:
        parsed = item.parsed
        alone = parsed is not None and _goes_alone(parsed)
        sender = parsed.from_address if parsed is not None else ""
        if segment and (alone or item.keys & keys or sender in named):
            yield segment
            segment, keys, named = [], set(), set()
        segment.append(item)
        keys |= item.keys
        if parsed is not None:
            named |= {normalize_email(a) for _n, a in parsed.to + parsed.cc}
        if alone:
            yield segment
            segment, keys, named = [], set(), set()
    if segment:
        yield segment


def _goes_alone(parsed: ParsedMessage) -> bool:
    if parsed.bounce.detected or matching.is_to_bounce_alias(parsed):
        return True
    if parsed.thread_ids or parsed.subject_tags:
        return True
    domain = matching.our_domain()
    return any(
        d == domain and local.lower().startswith(matching.REPLY_PREFIX)
        for local, d in map(matching.split_address, parsed.recipients_cased)
    )


def _store(
    items: list[Incoming], *, source: str, server: IncomingServerLike | None
) -> None:
    """Store the new messages of a segment; a duplicate gets its result instead.

    With no transaction open (an MTA pipe, the mail catcher) the rows are committed
    before routing: a crash mid-routing leaves them for the next delivery of the
    same bytes to find (``_seen_before``). Inside the caller's transaction (the
    pollers, with their ledger) they are inserted with their outcome, by
    ``write_plans``: committed with everything else, or not at all."""
    reasons = duplicate_reasons([(item.sha256, item.parsed) for item in items])
    fresh: list[tuple[Incoming, InboundMail]] = []
    for item, reason in zip(items, reasons, strict=True):
        if reason:
            item.result = _seen_before(item.sha256, reason)
            continue
        row = new_inbound_mail(
            item.raw, item.sha256, source=source, server=server, parsed=item.parsed
        )
        fresh.append((item, row))
    if transaction.get_connection().in_atomic_block:
        for item, row in fresh:
            item.inbound = row
        return
    try:
        with transaction.atomic():
            InboundMail.objects.bulk_create([row for _item, row in fresh])
        for item, row in fresh:
            item.inbound = row
    except IntegrityError:  # the same bytes won a race: one by one, to know which
        for item, row in fresh:
            row.pk = None
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:
                item.result = _seen_before(item.sha256, str(SAME_BYTES))
            else:
                item.inbound = row


def _route_stored(
    items: list[Incoming], server: IncomingServerLike | None, *, reprocess: bool
) -> int:
    """Decide the stored ``items`` and write their plans together; returns how
    many it routed (it stops before a message that must see their writes)."""
    if items[0].parsed is None:  # unparsable: quarantined with the reason
        item = items[0]
        assert item.error is not None
        _quarantine_item(item, item.error.user_message, detail=item.error.detail)
        return 1
    batch: list[Incoming] = []
    for item in items:
        if item.parsed is None:
            break
        batch.append(item)
    errors: dict[int, Exception] = {}
    decided: list[Decided] = []
    try:
        with transaction.atomic():
            reads = GroupReads([item.parsed for item in batch if item.parsed])
            for index, item in enumerate(batch):
                assert item.inbound is not None and item.parsed and item.verdict
                reads.checkpoint()
                router = Router(
                    inbound=item.inbound,
                    parsed=item.parsed,
                    server=server,
                    verdict=item.verdict,
                    reads=reads,
                )
                try:
                    plan = router.decide()
                except SegmentConflict:
                    reads.restore()
                    batch = batch[:index]
                    break
                except RoutingError as exc:  # no route, or our configuration
                    reads.restore()
                    errors[index] = exc
                    continue
                decided.append(Decided(item.inbound, item.parsed, item.verdict, plan))
            routes = write_plans(decided, reads, from_quarantine=reprocess)
    except IntegrityError as exc:
        # Another poll stored a copy meanwhile (the same mail in two mailboxes): a
        # duplicate, handled here or one by one. Anything else is a real fault.
        if len(batch) > 1:
            logger.info("routing: %s messages met a copy stored meanwhile; routed "
                        "one by one", len(batch))  # fmt: skip
            for item in batch:
                _route_stored([item], server, reprocess=reprocess)
            return len(batch)
        item = batch[0]
        if InboundMail.objects.filter(sha256=item.sha256).exists():
            logger.info("routing: a message from %s was stored meanwhile", item.sha256)
            item.result = _seen_before(item.sha256, str(SAME_BYTES))
            return 1
        return _route_failed(batch, server, exc, reprocess=reprocess)
    except Exception as exc:  # a bug or an outage: never block the next message
        return _route_failed(batch, server, exc, reprocess=reprocess)
    done = iter(zip(decided, routes, strict=True))
    for index, item in enumerate(batch):
        assert item.inbound is not None
        if index in errors:
            error = errors[index]
            logger.info(
                "routing: a message from %s quarantined: %s", item.sha256, error
            )
            message, detail = _error_text(error)
            _quarantine_item(item, message, detail=detail)
            if isinstance(error, RoutingConfigError) and error.alias is not None:
                report_alias_problem(alias=error.alias, reason=message)
            continue
        written, mine = next(done)
        item.result = RoutingResult(
            written.plan.outcome,
            routes=[Route(a, record_label(r), pk) for a, r, pk in mine],
            reason=written.plan.reason,
            inbound_id=item.inbound.pk,
        )
    return len(batch)


def _route_failed(
    batch: list[Incoming],
    server: IncomingServerLike | None,
    exc: Exception,
    *,
    reprocess: bool,
) -> int:
    """A bug or an outage while routing ``batch``: one by one, then quarantine (the
    error is logged with its traceback)."""
    if len(batch) > 1:
        logger.exception("routing: %s messages are routed one by one", len(batch))
        for item in batch:
            _route_stored([item], server, reprocess=reprocess)
        return len(batch)
    item = batch[0]
    logger.exception("routing: a message from %s quarantined", item.sha256)
    _quarantine_item(
        item,
        _("Routing failed: %(error)s") % {"error": str(exc)[:300]},
        detail=f"{type(exc).__name__}: {exc}"[:2000],
    )
    return 1


def _quarantine_item(item: Incoming, reason: str, *, detail: str = "") -> None:
    """Quarantine a stored message (inserting its row first if it waited for its
    outcome: a copy stored meanwhile makes it a duplicate)."""
    assert item.inbound is not None
    if item.inbound.pk is None:
        try:
            with transaction.atomic():
                item.inbound.save(force_insert=True)
        except IntegrityError:
            item.result = _seen_before(item.sha256, str(SAME_BYTES))
            return
    item.result = _quarantine(item.inbound, reason, detail=detail)


def _error_text(error: Exception) -> tuple[str, str]:
    if isinstance(error, RoutingError):
        return error.user_message, error.detail
    return str(error), ""


def _seen_before(sha256: str, reason: str) -> RoutingResult:
    """A duplicate; but if routing of the earlier copy was interrupted (a crash after
    storing it), that copy goes to quarantine so that nothing is silently lost."""
    stale = timezone.now() - dt.timedelta(minutes=INTERRUPTED_AFTER_MINUTES)
    interrupted = InboundMail.objects.filter(
        sha256=sha256, outcome=Outcome.RECEIVED, received_at__lt=stale
    ).first()
    if interrupted is not None:
        return _quarantine(
            interrupted, _("Routing was interrupted; reprocess the message.")
        )
    return RoutingResult(Outcome.DUPLICATE, reason=reason)


def new_inbound_mail(
    raw: bytes,
    sha256: str,
    *,
    source: str,
    server: IncomingServerLike | None,
    parsed: ParsedMessage | None,
) -> InboundMail:
    """The unsaved ``InboundMail`` of received bytes (what parsing told of them)."""
    inbound = InboundMail(
        raw=raw,
        size=len(raw),
        sha256=sha256,
        source=source[:60],
        server_name=str(server or "")[:200],
    )
    if parsed is not None:
        inbound.message_id = parsed.message_id if parsed.has_message_id else ""
        inbound.knowlix_message_id = parsed.knowlix_message_id
        inbound.from_address = parsed.from_address[:320]
        inbound.subject = parsed.subject[:998]
    return inbound


def _quarantine(
    inbound: InboundMail, reason: str, *, detail: str = ""
) -> RoutingResult:
    now = timezone.now()
    inbound.outcome = Outcome.QUARANTINED
    inbound.reason = reason
    inbound.processed_at = now
    inbound.save(update_fields=["outcome", "reason", "processed_at"])
    unprocessed, created = UnprocessedMail.objects.get_or_create(
        inbound=inbound, defaults={"reason": reason, "detail": detail}
    )
    if not created:
        unprocessed.reason, unprocessed.detail = reason, detail
        unprocessed.attempts += 1
        unprocessed.last_attempt_at = now
        unprocessed.save(
            update_fields=["reason", "detail", "attempts", "last_attempt_at"]
        )
    return RoutingResult(Outcome.QUARANTINED, reason=reason, inbound_id=inbound.pk)


# --- Quarantine page actions --------------------------------------------------------


def reprocess_unprocessed(*, unprocessed: UnprocessedMail) -> RoutingResult:
    """Route a quarantined message again (after a fix of configuration or code)."""
    inbound = unprocessed.inbound
    return route_incoming_messages(
        raws=[bytes(inbound.raw)], source=inbound.source, stored=[inbound]
    )[0]


@transaction.atomic
def discard_unprocessed(*, unprocessed: UnprocessedMail, user_label: str) -> None:
    """Drop a quarantined message on purpose; the raw bytes stay on InboundMail."""
    inbound = unprocessed.inbound
    inbound.outcome = Outcome.IGNORED
    inbound.reason = _("Discarded from quarantine by %(user)s.") % {"user": user_label}
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=["outcome", "reason", "processed_at"])
    unprocessed.delete()


__all__ = [
    "RoutingResult",
    "discard_unprocessed",
    "reprocess_unprocessed",
    "route_incoming_message",
]
