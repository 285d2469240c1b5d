"""What routing reads for a group of messages, read once for the group.

``GroupReads`` answers the questions the routing rules ask (is it a duplicate, which
aliases, who is the sender, how much did the sender send) for a *segment* of
messages, with a constant number of queries whatever its size, and keeps what the
segment's own decisions add (contacts to create, messages counted, loop warnings) so
that a later message of the segment sees the earlier ones as if they were written.
It only reads; ``routing.writes`` writes.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from feed.models import Message
from knowlix.models import Contact, normalize_email
from mailservers.models import OutgoingMail
from routing import loops, matching
from routing.aliases import alias_problem
from routing.models import Alias, InboundMail, SenderRateCounter
from routing.parsing import ParsedMessage

Scope = SenderRateCounter.Scope
SAME_BYTES = _lazy("The same bytes were received before.")


def duplicate_reasons(
    items: Sequence[tuple[str, ParsedMessage | None]],
) -> list[str]:
    """For each ``(sha256, parsed)``: why it was seen before (same bytes, Message-ID,
    in a feed, one of ours), or "". Three indexed reads for the whole group."""
    shas = [sha for sha, _p in items]
    ids = [p.message_id for _s, p in items if p is not None and p.has_message_id]
    ours = [p.knowlix_message_id for _s, p in items if p and p.knowlix_message_id]
    inbound = set(
        InboundMail.objects.filter(Q(sha256__in=shas) | Q(message_id__in=ids))
        .order_by()
        .values_list("sha256", "message_id")
    )
    seen_shas = {sha for sha, _m in inbound}
    seen_ids = {mid for _s, mid in inbound if mid}
    in_feed: set[str] = set()
    outgoing: set[str] = set()
    if ids or ours:
        in_feed = set(
            Message.objects.filter(message_id__in=ids + ours).values_list(
                "message_id", flat=True
            )
        )
    if ours:
        outgoing = set(
            OutgoingMail.objects.filter(message_id__in=ours).values_list(
                "message_id", flat=True
            )
        )
    reasons = []
    for sha, parsed in items:
        if sha in seen_shas:
            reasons.append(str(SAME_BYTES))
        elif parsed is None:
            reasons.append("")
        elif parsed.has_message_id and parsed.message_id in seen_ids:
            reasons.append(_("A message with this Message-ID was received before."))
        elif _own_ids(parsed) & in_feed:
            reasons.append(_("The message is already in a feed."))
        elif parsed.knowlix_message_id and parsed.knowlix_message_id in outgoing:
            reasons.append(_("The message is one of ours (X-Knowlix-Message-Id)."))
        else:
            reasons.append("")
    return reasons


def _own_ids(parsed: ParsedMessage) -> set[str]:
    ids = {parsed.message_id} if parsed.has_message_id else set()
    return ids | ({parsed.knowlix_message_id} - {""})


class GroupReads:
    """The reads of one segment of messages (call inside its transaction)."""

    def __init__(self, messages: Sequence[ParsedMessage]) -> None:
        self.messages = list(messages)
        names = {name for m in self.messages for name in matching.alias_names(m)}
        # The senders' own names: mail from one of our aliases is a loop.
        names |= {matching.split_address(m.from_address)[0] for m in self.messages}
        self.aliases: dict[str, Alias] = {}
        if names:
            rows = Alias.objects.filter(name__in=names).select_related(
                "content_type", "team"
            )
            self.aliases = {alias.name: alias for alias in rows}
        self._contacts: dict[str, Contact] | None = None
        self._problems: dict[int, str] = {}
        self._users: dict[str, User] | None = None
        self._create_totals: Counter[str] | None = None
        self.bounced: list[Contact] = []  # senders' contacts with a bounce count
        self.reset: set[str] = set()  # senders whose bounce counts go back to 0
        self.new_contacts: dict[str, Contact] = {}  # created by the segment
        self.counted: Counter[tuple[str, str, str]] = Counter()  # by the segment
        self.warned: set[str] = set()  # loop warnings the segment sends
        self.touched: set[str] = set()  # existing records the segment posts on
        self._undo: list[Callable[[], object]] = []

    def checkpoint(self) -> None:
        """Start recording what a decision adds (see :meth:`restore`)."""
        self._undo = []

    def restore(self) -> None:
        """Forget what the decision since :meth:`checkpoint` added (it failed: its
        message is quarantined, and the segment's other messages never saw it)."""
        for undo in reversed(self._undo):
            undo()
        self._undo = []

    def _add(self, values: set[str], value: str) -> None:
        if value not in values:
            values.add(value)
            self._undo.append(functools.partial(values.discard, value))

    def mark_warned(self, address: str) -> None:
        """A loop warning goes to ``address`` with the segment's writes."""
        self._add(self.warned, address)

    def mark_touched(self, label: str) -> None:
        """The segment posts on the existing record ``label``."""
        self._add(self.touched, label)

    # --- aliases --------------------------------------------------------------------

    def find_aliases(self, parsed: ParsedMessage) -> list[Alias]:
        return matching.find_aliases(parsed, known=self.aliases)

    def alias_problem(self, alias: Alias) -> str:
        """``routing.aliases.alias_problem``, read once per alias."""
        if alias.pk not in self._problems:
            self._problems[alias.pk] = alias_problem(alias)
        return self._problems[alias.pk]

    def alias_names(self, parsed: ParsedMessage) -> set[str]:
        """Every alias (active or not) that a recipient of ``parsed`` is."""
        return {n for n in matching.alias_names(parsed) if n in self.aliases}

    def is_from_ourselves(self, parsed: ParsedMessage) -> bool:
        names = {matching.split_address(parsed.from_address)[0]} & set(self.aliases)
        return matching.is_system_address(parsed.from_address, alias_names=names)

    # --- senders --------------------------------------------------------------------

    def sender_contact(self, address: str) -> Contact | None:
        """The address's oldest contact (one the segment creates included); a normal
        mail proves the address works: its bounce counter goes back to 0."""
        if not address:
            return None
        if self._contacts is None:
            self._read_contacts()
        assert self._contacts is not None
        self._add(self.reset, address)
        return self._contacts.get(address) or self.new_contacts.get(address)

    def _read_contacts(self) -> None:
        addresses = {m.from_address for m in self.messages if m.from_address}
        self._contacts = {}
        rows = Contact.objects.filter(email_normalized__in=addresses).order_by("pk")
        for contact in rows:
            self._contacts.setdefault(contact.email_normalized, contact)
            if contact.bounce_count:
                self.bounced.append(contact)

    def user(self, address: str) -> User | None:
        """The first active user (by pk) with this email, any case."""
        if self._users is None:
            addresses = {m.from_address for m in self.messages if m.from_address}
            self._users = _users_by_address(addresses)
        return self._users.get(address)

    def new_contact(self, address: str, name: str) -> Contact:
        """The contact of an unknown sender, created with the segment's writes."""
        contact = self.new_contacts.get(address)
        if contact is None:
            contact = Contact(
                name=(name or address)[:200],
                email=address,
                email_normalized=normalize_email(address),
            )
            self.new_contacts[address] = contact
            self._undo.append(functools.partial(self.new_contacts.pop, address))
        return contact

    # --- loop protection ------------------------------------------------------------

    def is_over_limit(self, address: str, scope: str, record: str = "") -> bool:
        """The sender reached the loop limit, counting what the segment counted."""
        if not address or loops.is_allowed_sender(address):
            return False
        pending = self.counted[(address, str(scope), record)]
        if scope == Scope.CREATE and not record:
            if self._create_totals is None:
                senders = [m.from_address for m in self.messages if m.from_address]
                self._create_totals = Counter(
                    loops.window_totals(addresses=senders, scope=Scope.CREATE)
                )
            total = self._create_totals[address]
        else:
            total = loops.window_total(address=address, scope=scope, record=record)
        return total + pending >= loops.loop_limit()

    def count(self, address: str, scope: str, record: str = "") -> None:
        if address:
            key = (address, str(scope), record)
            self.counted[key] += 1
            self._undo.append(functools.partial(self.counted.subtract, [key]))

    def recently_warned(self, address: str) -> bool:
        return address in self.warned or loops.recently_warned(address)


def _users_by_address(addresses: set[str]) -> dict[str, User]:
    if not addresses:
        return {}
    # One IN over the lower-cased column (as ``user_addresses`` reads it), not an OR
    # of one ``iexact`` per sender: building and compiling that filter cost more
    # than the query itself (~0.3 ms a sender). ``addresses`` are normalized.
    rows = (
        get_user_model()
        .objects.annotate(address=Lower("email"))
        .filter(address__in={a.lower() for a in addresses}, is_active=True)
        .order_by("pk")
    )
    users: dict[str, User] = {}
    for user in rows:
        users.setdefault(normalize_email(user.email), user)
    return users
