"""Route many incoming messages at once: the pollers' path (same outcomes, fewer
statements).

``route_incoming_messages`` gives each message the outcome ``route_incoming_message``
would give it, in the same order. The common case, a new mail that creates a
record (an incoming server's default action, or an alias that creates records for
everyone), is written in bulk for each *run* of such messages: one read per run of
duplicates, senders and loop counters, one insert per table. Everything else
(replies, bounces, loops, refusals, quarantine, and any mail of the run that turns
out to be a duplicate or over its sender's loop limit) goes through
``route_incoming_message`` one by one, after the run that precedes it is written,
so that it sees it. If writing a run fails, the run's savepoint is rolled back and
its messages are routed one by one, so that one bad message is quarantined alone.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from feed.models import Message
from feed.services import new_record_followers, post_messages
from feed.services import records as record_services
from knowlix.models import Contact, Record, Team, normalize_email
from knowlix.records import record_label
from mailservers.models import OutgoingMail
from routing import loops, matching, posting
from routing.authenticity import Verdict, sender_verdict, user_addresses
from routing.errors import ParseError
from routing.matching import Author
from routing.models import Alias, InboundMail, SenderRateCounter
from routing.parsing import ParsedMessage, parse_message
from routing.routes import IncomingServerLike, default_team, model_for_action
from routing.services import (
    Route,
    RoutingResult,
    new_inbound_mail,
    route_incoming_message,
)

logger = logging.getLogger(__name__)
Outcome = InboundMail.Outcome
Scope = SenderRateCounter.Scope


@dataclass
class _NewRecordMail:
    """A message that creates a record, as far as its own content tells."""

    index: int
    raw: bytes
    parsed: ParsedMessage
    verdict: Verdict
    model: type[Record]
    defaults: dict
    alias_names: set[str]  # every alias its addresses could be (for recipients)
    team: Team | None = None  # its alias's or its server's
    author: Author | None = None  # known once the run's senders are read

    @property
    def keys(self) -> set[str]:
        keys = {self.parsed.sha256}
        if self.parsed.has_message_id:
            keys.add(self.parsed.message_id)
        if self.parsed.knowlix_message_id:
            keys.add(self.parsed.knowlix_message_id)
        return keys


@dataclass
class PreparedMessages:
    """Messages parsed, and the record-creating ones found, before any write."""

    raws: Sequence[bytes]
    new_record_mail: list[_NewRecordMail | None]


def prepare_messages(
    *, raws: Sequence[bytes], server: IncomingServerLike | None = None
) -> PreparedMessages:
    """Parse the messages and check their senders (a DKIM check may wait on DNS):
    call outside the transaction that routes them, so that it stays short."""
    parsed = [_parse(raw) for raw in raws]
    aliases = _aliases_for([p for p in parsed if p is not None])
    users = user_addresses([p.from_address for p in parsed if p is not None])
    mails: list[_NewRecordMail | None] = []
    for index, (raw, message) in enumerate(zip(raws, parsed, strict=True)):
        try:
            mails.append(_new_record_mail(index, raw, message, server, aliases, users))
        except Exception:  # a bug: the message goes alone, where it is quarantined
            logger.exception("routing: message %s of a batch is routed alone", index)
            mails.append(None)
    return PreparedMessages(raws=raws, new_record_mail=mails)


def route_incoming_messages(
    *,
    raws: Sequence[bytes],
    source: str,
    server: IncomingServerLike | None = None,
    prepared: PreparedMessages | None = None,
) -> list[RoutingResult]:
    """Store and route ``raws`` in order; never raises on bad mail. Call inside a
    transaction to commit them together (the pollers do, with their ledger).
    ``prepared``: :func:`prepare_messages` of the same ``raws``, done before."""
    if prepared is None:
        prepared = prepare_messages(raws=raws, server=server)
    assert len(prepared.raws) == len(raws)
    results: list[RoutingResult | None] = [None] * len(raws)
    run: list[_NewRecordMail] = []
    run_keys: set[str] = set()  # its sha256s and Message-IDs
    named: set[str] = set()  # the addresses in its To/Cc
    for index, (raw, mail) in enumerate(
        zip(raws, prepared.new_record_mail, strict=True)
    ):
        if mail is not None and mail.parsed.from_address in named:
            # One by one, the earlier mail was posted before this sender's contact
            # could exist; a run creates its contacts first: start a new run.
            _write_run(run, results, source=source, server=server)
            run, run_keys, named = [], set(), set()
        if mail is not None and not (mail.keys & run_keys):
            run.append(mail)
            run_keys |= mail.keys
            named |= {normalize_email(a) for _n, a in mail.parsed.to + mail.parsed.cc}
            continue
        _write_run(run, results, source=source, server=server)
        run, run_keys, named = [], set(), set()
        results[index] = route_incoming_message(raw=raw, source=source, server=server)
    _write_run(run, results, source=source, server=server)
    finished = [r for r in results if r is not None]
    assert len(finished) == len(results)  # every message has its result
    return finished


def _parse(raw: bytes) -> ParsedMessage | None:
    try:
        return parse_message(raw)
    except ParseError:
        return None  # quarantined by route_incoming_message, with the reason


def _aliases_for(messages: list[ParsedMessage]) -> dict[str, Alias]:
    """Every alias (active or not) that a recipient of these messages could be."""
    names = {name for m in messages for name in matching.alias_names(m)}
    if not names:
        return {}
    rows = Alias.objects.filter(name__in=names).select_related("content_type", "team")
    return {alias.name: alias for alias in rows}


def _new_record_mail(
    index: int,
    raw: bytes,
    parsed: ParsedMessage | None,
    server: IncomingServerLike | None,
    aliases: dict[str, Alias],
    users: set[str],
) -> _NewRecordMail | None:
    """The message if its content alone says it creates a record, else None.

    The rules of ``route_parsed`` and ``Router.run`` for a mail that is no loop
    answer, bounce or mail of ours, has no reply token, thread headers or subject
    tag, and goes to one alias that creates records for everyone, or to none with
    a server default action."""
    if parsed is None or not parsed.from_address:
        return None
    if (
        parsed.loop_tags
        or parsed.bounce.detected
        or matching.is_to_bounce_alias(parsed)
    ):
        return None
    if matching.split_address(parsed.from_address)[1] == matching.our_domain():
        return None  # perhaps one of our own addresses: a loop
    if parsed.thread_ids or parsed.subject_tags or _has_reply_token(parsed):
        return None
    found = matching.find_aliases(parsed, known=aliases)
    names = {name for name in matching.alias_names(parsed) if name in aliases}
    if found:
        alias = found[0]
        model = alias.model
        if (
            len(found) > 1
            or model is None
            or not alias.creates_records
            or alias.contact_policy != Alias.ContactPolicy.EVERYONE
        ):
            return None
        defaults = dict(alias.defaults or {})
        team = alias.team
    else:
        model = model_for_action(getattr(server, "default_action", "") or "")
        if model is None:
            return None
        defaults = {}
        team = default_team(server)
    verdict = sender_verdict(parsed, raw, users=users)
    return _NewRecordMail(index, raw, parsed, verdict, model, defaults, names, team)


def _has_reply_token(parsed: ParsedMessage) -> bool:
    domain = matching.our_domain()
    return any(
        d == domain and local.lower().startswith(matching.REPLY_PREFIX)
        for local, d in map(matching.split_address, parsed.recipients_cased)
    )


def _write_run(
    run: list[_NewRecordMail],
    results: list[RoutingResult | None],
    *,
    source: str,
    server: IncomingServerLike | None,
) -> None:
    """Write a run in bulk; its duplicates and loop-limited mail one by one after.
    If anything in the bulk work fails (a bug, a bad configuration, a concurrent
    insert), its savepoint is rolled back and the whole run goes one by one, where
    each message is quarantined alone with the reason."""
    if not run:
        return
    written: list[tuple[_NewRecordMail, RoutingResult]] = []
    try:
        with transaction.atomic():
            later = _duplicates(run)
            bulk = [mail for mail in run if mail.index not in later]
            later |= _read_senders(bulk)
            # Mail refused for its sender's loop limit (one by one, after the run)
            # created its unknown sender's contact first: a later mail sees it.
            _create_contacts(bulk)
            bulk = [mail for mail in bulk if mail.index not in later]
            written = list(
                zip(bulk, _create_records(bulk, source, server), strict=True)
            )
    except Exception:
        logger.exception("routing: a run of %s messages is routed one by one", len(run))
        later, written = {mail.index for mail in run}, []
    for mail, result in written:
        results[mail.index] = result
    for mail in run:
        if mail.index in later:
            results[mail.index] = route_incoming_message(
                raw=mail.raw, source=source, server=server
            )


def _duplicates(run: list[_NewRecordMail]) -> set[int]:
    """The run's mail seen before (same bytes, Message-ID, or one of ours): the
    reads of ``_duplicate_reason``, once for the run."""
    shas = [mail.parsed.sha256 for mail in run]
    ids = [mail.parsed.message_id for mail in run if mail.parsed.has_message_id]
    ours = [m.parsed.knowlix_message_id for m in run if m.parsed.knowlix_message_id]
    seen = set(
        InboundMail.objects.filter(Q(sha256__in=shas) | Q(message_id__in=ids))
        .values_list("sha256", "message_id")
        .order_by()
    )
    found = {value for pair in seen for value in pair if value}
    if ids or ours:
        found |= set(
            Message.objects.filter(message_id__in=ids + ours).values_list(
                "message_id", flat=True
            )
        )
    if ours:
        found |= set(
            OutgoingMail.objects.filter(message_id__in=ours).values_list(
                "message_id", flat=True
            )
        )
    return {mail.index for mail in run if mail.keys & found}


def _read_senders(run: list[_NewRecordMail]) -> set[int]:
    """Find each sender (a user if verified, else their oldest contact) as
    ``find_author`` does, reset their bounce counters, and return the mail over
    its sender's loop limit (refused one by one, after the run)."""
    addresses = {mail.parsed.from_address for mail in run}
    contacts: dict[str, Contact] = {}
    bounced: list[int] = []
    for contact in Contact.objects.filter(email_normalized__in=addresses).order_by(
        "pk"
    ):
        contacts.setdefault(contact.email_normalized, contact)
        if contact.bounce_count:
            bounced.append(contact.pk)
            contact.bounce_count = 0
    if bounced:  # a normal mail proves the address works again
        Contact.objects.filter(pk__in=bounced).update(bounce_count=0)
    users = _users_by_address({m.parsed.from_address for m in run if _verified(m)})
    # A user's address too: its unverified mail is no user's, and is limited by
    # what the address created, the user's mail included (every creation counts).
    limited = {a for a in addresses if not loops.is_allowed_sender(a)}
    totals = Counter(loops.window_totals(addresses=list(limited), scope=Scope.CREATE))
    limit = loops.loop_limit()
    over: set[int] = set()
    for mail in run:
        address = mail.parsed.from_address
        user = users.get(address) if _verified(mail) else None
        mail.author = (
            Author(user=user) if user else Author(contact=contacts.get(address))
        )
        if address not in limited:
            continue
        if user is None and totals[address] >= limit:
            over.add(mail.index)
            continue
        totals[address] += 1
    return over


def _verified(mail: _NewRecordMail) -> bool:
    return not mail.verdict.is_unverified


def _users_by_address(addresses: set[str]) -> dict[str, User]:
    """The first active user (by pk) whose email matches each address, any case."""
    if not addresses:
        return {}
    match = Q()
    for address in addresses:
        match |= Q(email__iexact=address)
    users: dict[str, User] = {}
    for user in get_user_model().objects.filter(match, is_active=True).order_by("pk"):
        users.setdefault(normalize_email(user.email), user)
    return users


def _create_contacts(run: list[_NewRecordMail]) -> None:
    """The contacts ``Router.author_for`` creates for unknown senders, in one insert
    (named after the first mail of each), set as the mail's authors."""
    new_contacts: dict[str, Contact] = {}
    for mail in run:
        assert mail.author is not None
        if not mail.author.is_known:
            address = mail.parsed.from_address
            if address not in new_contacts:
                name = (mail.parsed.from_name or address)[:200]
                new_contacts[address] = Contact(
                    name=name, email=address, email_normalized=normalize_email(address)
                )
            mail.author.contact = new_contacts[address]
    Contact.objects.bulk_create(list(new_contacts.values()))


def _create_records(
    run: list[_NewRecordMail], source: str, server: IncomingServerLike | None
) -> list[RoutingResult]:
    """The writes of ``Router.create`` and ``_store``/``_finish`` for the whole run
    (its senders' contacts are created already: :func:`_create_contacts`)."""
    records = record_services.create_records(
        [
            (
                posting.new_record(
                    model=mail.model,
                    defaults=mail.defaults,
                    parsed=mail.parsed,
                    author=mail.author,
                    team=mail.team,
                ),
                mail.author.user,
            )
            for mail in run
            if mail.author is not None
        ]
    )
    posts = []
    for mail, record in zip(run, records, strict=True):
        assert mail.author is not None
        names = mail.alias_names
        posts.append(
            posting.mail_post(
                record=record,
                parsed=mail.parsed,
                content=posting.build_content(mail.parsed),
                author=mail.author,
                verdict=mail.verdict,
                parent=None,
                first_route=True,
                # Just created: its followers are the defaults, not read back.
                followers=new_record_followers(record=record, author=mail.author.user),
                is_system_address=functools.partial(
                    matching.is_system_address, alias_names=names
                ),
            )
        )
    messages = post_messages(posts)
    keys = []
    for mail, record in zip(run, records, strict=True):
        address = mail.parsed.from_address
        keys += [
            (address, Scope.CREATE, ""),
            (address, Scope.POST, record_label(record)),
        ]
    loops.count_messages(keys=keys)
    now = timezone.now()
    inbound, results = [], []
    for mail, record, message in zip(run, records, messages, strict=True):
        route = Route("created", record_label(record), message.pk)
        row = new_inbound_mail(
            mail.raw,
            mail.parsed.sha256,
            source=source,
            server=server,
            parsed=mail.parsed,
        )
        row.outcome, row.routes, row.processed_at = (
            Outcome.ROUTED,
            [route.as_dict()],
            now,
        )
        inbound.append(row)
        results.append(RoutingResult(Outcome.ROUTED, routes=[route]))
    for row, result in zip(
        InboundMail.objects.bulk_create(inbound), results, strict=True
    ):
        result.inbound_id = row.pk
    return results


__all__ = ["PreparedMessages", "prepare_messages", "route_incoming_messages"]
