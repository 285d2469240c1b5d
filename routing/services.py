"""Route an incoming message: the one pipeline every entry point goes through.

The raw bytes are stored first (``InboundMail``, unique by sha256) and committed
before routing starts; routing then runs in its own savepoint, so a failure rolls
back its writes, quarantines the message with the reason and never blocks the next
one. The rule order is the one of issue #8 (duplicate, loop-bounce reply, bounce,
reply token, thread headers, subject tag, aliases, server default, refusal).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Value
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from feed.models import Message
from knowlix.records import record_label
from mailservers.models import OutgoingMail
from routing import bounces, matching
from routing.authenticity import Verdict, sender_verdict
from routing.errors import ParseError, RoutingError
from routing.models import Alias, InboundMail, UnprocessedMail
from routing.parsing import ParsedMessage, parse_message
from routing.routes import IncomingServerLike, Router

logger = logging.getLogger(__name__)
Outcome = InboundMail.Outcome
SAME_BYTES = _lazy("The same bytes were received before.")
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


def route_incoming_message(
    *, raw: bytes, source: str, server: IncomingServerLike | None = None
) -> RoutingResult:
    """Store ``raw`` and route it; returns what happened (never raises on bad mail)."""
    sha256 = hashlib.sha256(raw).hexdigest()
    try:
        parsed = parse_message(raw)
    except ParseError as exc:
        inbound = _store(raw, sha256, source=source, server=server, parsed=None)
        if inbound is None:
            return _seen_before(sha256, str(SAME_BYTES))
        return _quarantine(inbound, exc.user_message, detail=exc.detail)
    duplicate = _duplicate_reason(parsed, sha256)
    if duplicate:
        return _seen_before(sha256, duplicate)
    inbound = _store(raw, sha256, source=source, server=server, parsed=parsed)
    if inbound is None:
        return _seen_before(sha256, str(SAME_BYTES))
    return _route_stored(inbound, parsed, server)


def _duplicate_reason(parsed: ParsedMessage, sha256: str) -> str:
    """Why the message was seen before (same bytes, Message-ID, our own id), or "".

    One query: a UNION of the indexed lookups in InboundMail, Message and
    OutgoingMail, each row tagged with where it was found.
    """
    seen = Q(sha256=sha256)
    if parsed.has_message_id:
        seen |= Q(message_id=parsed.message_id)
    lookups: list[QuerySet[Any, tuple[str, str]]] = [
        InboundMail.objects.filter(seen)
        .order_by()
        .annotate(found_in=Value("inbound"))
        .values_list("sha256", "found_in")
    ]
    ours = [parsed.message_id] if parsed.has_message_id else []
    if parsed.knowlix_message_id:
        ours.append(parsed.knowlix_message_id)
    if ours:
        lookups.append(
            Message.objects.filter(message_id__in=ours)
            .order_by()
            .annotate(found_in=Value("feed"))
            .values_list("message_id", "found_in")
        )
    if parsed.knowlix_message_id:
        lookups.append(
            OutgoingMail.objects.filter(message_id=parsed.knowlix_message_id)
            .order_by()
            .annotate(found_in=Value("outgoing"))
            .values_list("message_id", "found_in")
        )
    rows = set(lookups[0].union(*lookups[1:]) if len(lookups) > 1 else lookups[0])
    found_in = {where for _value, where in rows}
    if (sha256, "inbound") in rows:
        return str(SAME_BYTES)
    if "inbound" in found_in:
        return _("A message with this Message-ID was received before.")
    if "feed" in found_in:
        return _("The message is already in a feed.")
    if "outgoing" in found_in:
        return _("The message is one of ours (X-Knowlix-Message-Id).")
    return ""


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


def _store(
    raw: bytes,
    sha256: str,
    *,
    source: str,
    server: IncomingServerLike | None,
    parsed: ParsedMessage | None,
) -> InboundMail | None:
    """Commit the raw bytes before routing; None if the same bytes won a race."""
    inbound = new_inbound_mail(raw, sha256, source=source, server=server, parsed=parsed)
    try:
        with transaction.atomic():
            inbound.save()
    except IntegrityError:
        return None
    return inbound


def _route_stored(
    inbound: InboundMail,
    parsed: ParsedMessage,
    server: IncomingServerLike | None,
    *,
    from_quarantine: bool = False,
) -> RoutingResult:
    # Before the transaction: a local DKIM check may wait on DNS.
    verdict = sender_verdict(parsed, bytes(inbound.raw))
    try:
        with transaction.atomic():
            result = route_parsed(
                inbound=inbound, parsed=parsed, server=server, verdict=verdict
            )
            _finish(inbound, result, from_quarantine=from_quarantine)
    except RoutingError as exc:  # no route, or our configuration: a human decides
        logger.info("routing: inbound mail %s quarantined: %s", inbound.pk, exc)
        return _quarantine(inbound, exc.user_message, detail=exc.detail)
    except Exception as exc:  # a bug or an outage: never block the next message
        logger.exception("routing: inbound mail %s quarantined", inbound.pk)
        message = str(exc)
        return _quarantine(
            inbound,
            _("Routing failed: %(error)s") % {"error": message[:300]},
            detail=f"{type(exc).__name__}: {exc}"[:2000],
        )
    result.inbound_id = inbound.pk
    return result


def _finish(
    inbound: InboundMail, result: RoutingResult, *, from_quarantine: bool
) -> None:
    inbound.outcome = result.outcome
    inbound.reason = result.reason
    inbound.routes = [r.as_dict() for r in result.routes]
    inbound.processed_at = timezone.now()
    inbound.save(
        update_fields=[
            "outcome",
            "reason",
            "routes",
            "processed_at",
            "loop_tag",
            "replied_at",
        ]
    )
    if from_quarantine:
        UnprocessedMail.objects.filter(inbound=inbound).delete()


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


def route_parsed(
    *,
    inbound: InboundMail,
    parsed: ParsedMessage,
    server: IncomingServerLike | None,
    verdict: Verdict,
) -> RoutingResult:
    """Apply the routing rules in order. Call inside ``transaction.atomic()``."""
    if parsed.loop_tags:
        return RoutingResult(
            Outcome.IGNORED, reason=_("A reply to one of our loop-protection bounces.")
        )
    if parsed.bounce.detected or matching.is_to_bounce_alias(parsed):
        return RoutingResult(Outcome.BOUNCE, reason=bounces.handle_bounce(parsed))
    if matching.is_from_ourselves(parsed):
        return RoutingResult(
            Outcome.IGNORED,
            reason=_("Sent from our own address %(address)s: a mail loop.")
            % {"address": parsed.from_address},
        )
    sender_contact = bounces.reset_bounce_count(parsed.from_address)
    router = Router(
        inbound=inbound,
        parsed=parsed,
        server=server,
        verdict=verdict,
        sender_contact=sender_contact,
    )
    router.run()
    routes = [
        Route(action, record_label(record), message.pk)
        for action, record, message in router.routes
    ]
    if routes:
        return RoutingResult(Outcome.ROUTED, routes=routes)
    if router.refusal:
        return RoutingResult(Outcome.REFUSED, reason=router.refusal)
    raise RoutingError(
        _("No route: not addressed to an alias, a reply address or a known thread.")
    )


# --- Quarantine page actions --------------------------------------------------------


def reprocess_unprocessed(*, unprocessed: UnprocessedMail) -> RoutingResult:
    """Route a quarantined message again (after a fix of configuration or code)."""
    inbound = unprocessed.inbound
    raw = bytes(inbound.raw)
    try:
        parsed = parse_message(raw)
    except ParseError as exc:
        return _quarantine(inbound, exc.user_message, detail=exc.detail)
    return _route_stored(inbound, parsed, server=None, from_quarantine=True)


@transaction.atomic
def discard_unprocessed(*, unprocessed: UnprocessedMail, user_label: str) -> None:
    """Drop a quarantined message on purpose; the raw bytes stay on InboundMail."""
    inbound = unprocessed.inbound
    inbound.outcome = Outcome.IGNORED
    inbound.reason = _("Discarded from quarantine by %(user)s.") % {"user": user_label}
    inbound.processed_at = timezone.now()
    inbound.save(update_fields=["outcome", "reason", "processed_at"])
    unprocessed.delete()


# --- Demo data ----------------------------------------------------------------------

DEFAULT_ALIASES = {
    "helpdesk": "ticket",
    "sales": "opportunity",
    "expenses": "expense",
    "jobs": "jobapplication",
}


def ensure_default_aliases() -> list:
    """Create the module aliases helpdesk@, sales@, expenses@, jobs@ (idempotent)."""
    aliases = []
    for name, model in DEFAULT_ALIASES.items():
        content_type = ContentType.objects.get_by_natural_key("knowlix", model)
        alias, _created = Alias.objects.get_or_create(
            name=name, defaults={"content_type": content_type}
        )
        aliases.append(alias)
    return aliases


__all__ = [
    "RoutingResult",
    "discard_unprocessed",
    "ensure_default_aliases",
    "reprocess_unprocessed",
    "route_incoming_message",
]
