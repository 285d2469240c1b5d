"""Write the plans of routed messages, a whole segment at once.

One insert per table for the segment (contacts, records of each kind, feed messages
and their recipients and notifications, loop counters, ``InboundMail`` rows with
their outcome), whatever the number of messages; a row stored before routing (no
transaction was open) is finished by an update of its own. The rarer writes (a bounce
report, a polite answer) are made message by message. Call inside the segment's
transaction: if anything fails, nothing of the segment is written.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from feed.services import NewPost, new_record_followers, post_messages
from feed.services import records as record_services
from knowlix.bulk import insert_instances
from knowlix.models import Contact, Record
from knowlix.records import record_label
from routing import bounces, loops, matching, posting, replies
from routing.authenticity import Verdict
from routing.models import InboundMail, SenderRateCounter, UnprocessedMail
from routing.parsing import ParsedMessage
from routing.reads import GroupReads
from routing.routes import Plan

Outcome = InboundMail.Outcome
Scope = SenderRateCounter.Scope
FINISHED_FIELDS = [
    "outcome",
    "reason",
    "routes",
    "processed_at",
    "loop_tag",
    "replied_at",
]


@dataclass
class Decided:
    """A stored message and its plan."""

    inbound: InboundMail
    parsed: ParsedMessage
    verdict: Verdict
    plan: Plan


def write_plans(
    decided: list[Decided], reads: GroupReads, *, from_quarantine: bool = False
) -> list[list[tuple[str, Record, int]]]:
    """Write every plan; returns each message's routes ``(action, record, message
    id)`` and finishes its ``InboundMail`` row (outcome, reason, routes)."""
    insert_instances(list(reads.new_contacts.values()))
    reset = [c for c in reads.bounced if c.email_normalized in reads.reset]
    if reset:  # a normal mail proves the address works again
        Contact.objects.filter(pk__in=[c.pk for c in reset]).update(bounce_count=0)
        for contact in reset:
            contact.bounce_count = 0
    created = iter(
        record_services.create_records(
            [
                (
                    posting.new_record(
                        model=route.model,
                        defaults=route.defaults,
                        parsed=item.parsed,
                        author=route.author,
                        team=route.team,
                    ),
                    route.author.user,
                )
                for item in decided
                for route in item.plan.routes
                if route.model is not None
            ]
        )
    )
    posts: list[NewPost] = []
    records: list[tuple[str, Record]] = []
    keys: list[tuple[str, str, str]] = []
    for item in decided:
        content = posting.build_content(item.parsed) if item.plan.routes else None
        address = item.parsed.from_address
        for index, route in enumerate(item.plan.routes):
            assert content is not None
            record = route.record or next(created)
            label = record_label(record)
            records.append(("posted" if route.record else "created", record))
            keys.append((address, Scope.POST, label))
            if route.record is None:
                keys.append((address, Scope.CREATE, ""))
            posts.append(
                posting.mail_post(
                    record=record,
                    parsed=item.parsed,
                    content=content,
                    author=route.author,
                    verdict=item.verdict,
                    parent=route.parent,
                    first_route=index == 0,
                    # Just created: its followers are the defaults, not read back.
                    followers=None
                    if route.record
                    else new_record_followers(record=record, author=route.author.user),
                    is_system_address=functools.partial(
                        matching.is_system_address, alias_names=item.plan.alias_names
                    ),
                )
            )
    messages = iter(post_messages(posts)) if posts else iter(())
    loops.count_messages(keys=keys)
    done = iter(records)
    now = timezone.now()
    routes: list[list[tuple[str, Record, int]]] = []
    for item in decided:
        plan, inbound = item.plan, item.inbound
        mine = [(*next(done), next(messages).pk) for _route in plan.routes]
        routes.append(mine)
        if plan.is_bounce:
            plan.reason = bounces.handle_bounce(item.parsed)
        if plan.answer:
            _answer(item)
        if mine:
            plan.outcome, plan.reason = Outcome.ROUTED, ""
        elif not plan.outcome:
            plan.outcome = Outcome.REFUSED
        inbound.outcome, inbound.reason = plan.outcome, plan.reason
        inbound.routes = [
            {"action": action, "record": record_label(record), "message": pk}
            for action, record, pk in mine
        ]
        inbound.processed_at = now
    # Rows stored before routing are finished; the others are inserted finished.
    stored = [item.inbound for item in decided if item.inbound.pk is not None]
    insert_instances([i.inbound for i in decided if i.inbound.pk is None])
    for row in stored:
        row.save(update_fields=FINISHED_FIELDS)
    if from_quarantine:
        UnprocessedMail.objects.filter(
            inbound__in=[item.inbound for item in decided]
        ).delete()
    return routes


def _answer(item: Decided) -> None:
    """Queue the plan's polite bounce; why it was not (the hourly limit, a sending
    problem) is told in the reason."""
    plan = item.plan
    queued, why_not = replies.send_refusal(
        inbound=item.inbound,
        parsed=item.parsed,
        reason=plan.answer,
        loop_tag=plan.loop_tag,
        verdict=item.verdict,
    )
    if why_not:
        plan.reason += " " + _("(Not answered: %(why)s.)") % {"why": why_not}
    if queued and plan.loop_tag:
        item.inbound.loop_tag = plan.loop_tag
