"""Who hears about a message, and how: the delivery plan of :func:`post_message`.

Rules (tested one by one in tests/feed/test_notify.py):
- every follower subscribed to the message's subtype is notified, except its author;
  users get an inbox notification, and an email too only if they prefer email;
- ``@username`` in a note or email notifies that user (if they may see the record);
- contacts get the message by email only when neither the message nor its subtype is
  internal: notes (and replies to them) never leave Knowlix;
- addresses added to an outgoing email become contacts that follow the record;
  known contacts in the To/Cc of a received mail start following it;
- each contact gets a mail of its own (To: that contact alone), and so does each
  colleague who prefers email; the addresses the author typed into To/Cc get one
  mail, addressed as typed; nobody in the To/Cc of a received mail is mailed it
  again (colleagues there still get the inbox notification).
:func:`plan_delivery` only reads: what to write (new contacts, follows) is in the
plan, and ``feed.services.posting.write_plan`` writes it. Internal only: call from inside
``post_message``'s transaction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from feed import delivery
from feed.delivery import Addressee
from feed.models import (
    Follower,
    FollowerRow,
    Message,
    MessageRecipient,
    Notification,
    Subtype,
)
from knowlix import params
from knowlix.access import can_view_record
from knowlix.bulk import insert_rows
from knowlix.models import Contact, normalize_email
from knowlix.users import get_profile
from mailservers.models import OutgoingRecipient

OutgoingKind = OutgoingRecipient.Kind
MENTION = re.compile(r"(?<![\w.@])@([\w][\w.+-]*[\w]|[\w])")


@dataclass
class DeliveryPlan:
    """Who hears about a message. ``external`` and ``users_by_email`` get a mail
    each; ``typed`` (the composer's To/Cc) get one mail together. ``new_contacts``
    (unsaved) and ``follow_contacts`` are ``write_plan``'s to write; the
    ``recipient_rows`` may point at the new contacts until then."""

    notified_users: list[User] = field(default_factory=list)
    external: list[Addressee] = field(default_factory=list)
    typed: list[Addressee] = field(default_factory=list)
    users_by_email: list[Addressee] = field(default_factory=list)
    recipient_rows: list[MessageRecipient] = field(default_factory=list)
    new_contacts: list[Contact] = field(default_factory=list)
    follow_contacts: list[Contact] = field(default_factory=list)


def mentioned_usernames(text: str) -> set[str]:
    return {m.group(1) for m in MENTION.finditer(text or "")}


def find_or_create_contact(address: str, name: str = "") -> Contact:
    normalized = normalize_email(address)
    contact = Contact.objects.filter(email_normalized=normalized).first()
    if contact is None:
        contact = Contact.objects.create(name=name or address, email=address)
    return contact


def new_contact(address: str, name: str = "") -> Contact:
    """An unsaved contact for an address nobody has yet (``write_plan`` saves
    it)."""
    contact = Contact(name=(name or address)[:200], email=address)
    contact.email_normalized = normalize_email(address)
    return contact


class Lookups:
    """Read-through caches of the delivery plans' reads, shared by the posts of one
    ``post_messages`` call: what one plan read, the next one does not read again,
    and a caller may fill them for all posts at once. Never stale within a call:
    the only people a plan writes are the contacts an outgoing email creates for
    new addresses, and the plan remembers them here (:meth:`remember`)."""

    def __init__(self) -> None:
        self._users: dict[int, User | None] = {}
        self._contacts: dict[int, Contact | None] = {}
        self._by_address: dict[str, Contact | None] = {}
        self._by_username: dict[str, User | None] = {}

    def users(self, ids: Iterable[int]) -> dict[int, User]:
        """Users by pk (with their profile), in the order of ``ids``."""
        ids = list(ids)
        missing = {pk for pk in ids if pk not in self._users}
        if missing:
            found = get_user_model().objects.filter(pk__in=missing)
            by_pk = {u.pk: u for u in found.select_related("profile")}
            self._users.update({pk: by_pk.get(pk) for pk in missing})
        return {pk: u for pk in ids if (u := self._users[pk]) is not None}

    def users_named(self, names: Iterable[str]) -> list[User]:
        """The users with these usernames (``@mentions``), with their profile."""
        names = set(names)
        missing = names - self._by_username.keys()
        if missing:
            found = get_user_model().objects.filter(username__in=missing)
            by_name = {u.get_username(): u for u in found.select_related("profile")}
            self._by_username.update({n: by_name.get(n) for n in missing})
        users = (self._by_username[n] for n in sorted(names))
        return [u for u in users if u is not None]

    def contacts(self, ids: Iterable[int]) -> dict[int, Contact]:
        """Contacts by pk with their name and email (the rest deferred)."""
        ids = list(ids)
        missing = {pk for pk in ids if pk not in self._contacts}
        if missing:
            # What a plan reads of them (a fan-out chunk loads thousands).
            by_pk = Contact.objects.only("id", "name", "email").in_bulk(missing)
            self._contacts.update({pk: by_pk.get(pk) for pk in missing})
        return {pk: c for pk in ids if (c := self._contacts[pk]) is not None}

    def add_contacts(self, contacts: Iterable[Contact]) -> None:
        """Contacts the caller already read (with at least their name and email),
        so :meth:`contacts` does not read them again."""
        self._contacts.update((c.pk, c) for c in contacts)

    def remember(self, contact: Contact) -> None:
        """A contact just found or planned for an address (an outgoing email's;
        a planned one is saved by ``write_plan`` before the next plan)."""
        if contact.pk is not None:
            self._contacts[contact.pk] = contact
        if self._by_address.get(contact.email_normalized) is None:
            self._by_address[contact.email_normalized] = contact

    def known_contacts(self, addresses: Iterable[str]) -> dict[str, Contact]:
        """Existing contacts with these addresses (never ours), by normalized
        address: the oldest one of each."""
        wanted = {normalize_email(a) for a in addresses if not _is_ours(a)}
        missing = wanted - self._by_address.keys()
        if missing:
            found: dict[str, Contact] = {}
            rows = Contact.objects.filter(email_normalized__in=missing)
            for contact in rows.order_by("id"):
                found.setdefault(contact.email_normalized, contact)
            self._by_address.update({a: found.get(a) for a in missing})
        return {a: c for a in wanted if (c := self._by_address[a]) is not None}


def _is_ours(address: str) -> bool:
    return normalize_email(address).endswith("@" + params.catchall_domain())


@dataclass
class Following:
    """Who follows a record, read once per post: ids only, objects loaded on need."""

    users: set[int] = field(default_factory=set)
    contacts: set[int] = field(default_factory=set)
    # (user_id, contact_id) of the followers subscribed to the post's subtype
    subscribed: list[tuple[int | None, int | None]] = field(default_factory=list)


def read_following(*, record: Model, subtype: Subtype) -> Following:
    """The record's followers by their subscriptions, in one query.

    A follower subscribed to nothing is left out of ``users``/``contacts``: callers
    use them only to skip a ``follow()`` that would change nothing anyway.
    """
    rows = (
        Follower.subtypes.through.objects.filter(
            follower__content_type=ContentType.objects.get_for_model(record),
            follower__object_id=record.pk,
        )
        .order_by("follower_id")
        .values_list("follower__user_id", "follower__contact_id", "subtype_id")
    )
    return following_from_rows(rows, subtype=subtype)


def following_from_rows(rows: Iterable[FollowerRow], *, subtype: Subtype) -> Following:
    """:func:`read_following` from rows the caller already has (in follower order)."""
    following = Following()
    for user_id, contact_id, subtype_id in rows:
        if user_id is not None:
            following.users.add(user_id)
        if contact_id is not None:
            following.contacts.add(contact_id)
        if subtype_id is not None and subtype_id == subtype.pk:
            following.subscribed.append((user_id, contact_id))
    return following


# ``getaddresses`` of a short list of values (the To/Cc of received mail repeats
# from one message to the next: ~12 µs a parse), by the whole list: it parses the
# values joined, which is not always the pairs of each value apart.
_CACHED_CHARS = 2000


@functools.lru_cache(maxsize=512)
def _cached_addresses(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(getaddresses(list(values)))


def parse_addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """``email.utils.getaddresses(values)``: (name, address) pairs."""
    values = tuple(values)
    if not values:
        return []
    if sum(map(len, values)) > _CACHED_CHARS:
        return getaddresses(list(values))
    return list(_cached_addresses(values))


def plan_delivery(
    *,
    message: Message,
    record: Model,
    extra_addresses: Sequence[str],
    cc_addresses: Sequence[str] = (),
    following: Following | None = None,
    lookups: Lookups | None = None,
) -> DeliveryPlan:
    """Who hears about ``message`` (no writes: see ``posting.write_plan``).

    ``extra_addresses``: a received mail's To/Cc, or the To typed in the composer
    (``cc_addresses``: its Cc). ``following``: :func:`read_following` for the
    message's subtype, when the caller already read it (it is read here
    otherwise). ``lookups``: reads shared with other plans of the same call."""
    plan = DeliveryPlan()
    lookups = lookups or Lookups()
    subtype = message.subtype
    assert subtype is not None  # only system notices have none (plan_notice)
    if following is None:
        following = read_following(record=record, subtype=subtype)
    incoming = message.direction == Message.Direction.INCOMING
    parsed = [(n, a, OutgoingKind.TO) for n, a in parse_addresses(extra_addresses)]
    parsed += [(n, a, OutgoingKind.CC) for n, a in parse_addresses(cc_addresses)]
    parsed = [(n, a, k) for n, a, k in parsed if "@" in a]
    # Whoever the received mail was addressed to has it already.
    taken: set[str] = (
        {normalize_email(a) for _n, a, _k in parsed} if incoming else set()
    )
    _plan_users(
        plan,
        message=message,
        record=record,
        following=following,
        lookups=lookups,
        taken=taken,
    )
    public = not (message.is_internal or subtype.internal)
    if incoming:  # the mail's own To/Cc: recorded, and they already have it
        known = lookups.known_contacts([a for _n, a, _k in parsed])
        for name, address, _kind in parsed:
            contact = known.get(normalize_email(address))
            plan.recipient_rows.append(
                MessageRecipient(
                    message=message, address=address, name=name[:200], contact=contact
                )
            )
            if (
                contact is not None
                and public
                and not message.is_unverified_sender
                and contact.pk not in following.contacts
            ):
                plan.follow_contacts.append(contact)  # known Cc'd people follow
                following.contacts.add(contact.pk)
    if not public:
        return plan
    if incoming and message.is_unverified_sender:
        return plan  # do not relay mail whose sender we could not verify
    author_contact = message.author_contact if message.author_contact_id else None
    if author_contact is not None and author_contact.email:
        taken.add(normalize_email(author_contact.email))
    contacts = _subscribed_contacts(
        following, author_contact_id=message.author_contact_id, lookups=lookups
    )
    if not incoming and message.kind == Message.Kind.EMAIL:
        _plan_typed(
            plan,
            message=message,
            parsed=parsed,
            following=following,
            lookups=lookups,
            taken=taken,
        )
    for contact in contacts:
        key = normalize_email(contact.email)
        if not key or key in taken or contact.pk == message.author_contact_id:
            continue
        taken.add(key)
        plan.external.append(Addressee(contact.email, contact.name))
        plan.recipient_rows.append(_contact_row(message, contact))
    return plan


def _contact_row(message: Message, contact: Contact) -> MessageRecipient:
    """``MessageRecipient(message=message, address=contact.email,
    name=contact.name[:200], contact_id=contact.pk)``, built as Django builds a
    row it reads (every field's value in order, no keyword to resolve): about
    60% of the cost, and a fan-out builds one per contact. The message is cached on
    it as the keyword would (a message saved later gives its id on insert)."""
    values: list[Any] = [
        *_ROW_DEFAULTS[:1],
        message.pk,
        contact.email,
        contact.name[:200],
        contact.pk,
        *_ROW_DEFAULTS[5:],
    ]
    row = MessageRecipient(*values)  # type: ignore[misc]  # the stubs: keywords only
    row._state.fields_cache["message"] = message
    return row


def _row_defaults() -> list[object]:
    """The default value of each field of a message recipient, in field order
    (checked: the fields :func:`_contact_row` sets are where it sets them)."""
    fields = MessageRecipient._meta.concrete_fields
    names = [f.attname for f in fields]
    assert names[:5] == ["id", "message_id", "address", "name", "contact_id"], names
    assert not any(f.has_default() and callable(f.default) for f in fields)
    return [f.get_default() for f in fields]


_ROW_DEFAULTS = _row_defaults()


def _plan_users(
    plan: DeliveryPlan,
    *,
    message: Message,
    record: Model,
    following: Following,
    lookups: Lookups,
    taken: set[str],
) -> None:
    """Subscribed and mentioned users: an inbox notification each, and a mail to
    those who prefer email (unless they were addressed by the received mail)."""
    user_ids = [
        user_id
        for user_id, _contact_id in following.subscribed
        if user_id is not None and user_id != message.author_user_id
    ]
    users = lookups.users(user_ids)
    if message.kind != Message.Kind.NOTIFICATION:
        for user in lookups.users_named(mentioned_usernames(message.body_text)):
            if user.pk != message.author_user_id:
                users.setdefault(user.pk, user)
    plan.notified_users = [
        u for u in users.values() if u.is_active and can_view_record(u, record)
    ]
    addressed = set(taken)
    for user in plan.notified_users:
        if get_profile(user).prefers_email and user.email:
            key = normalize_email(user.email)
            taken.add(key)
            if key in addressed:
                continue  # in the To/Cc of the received mail: has it already
            plan.users_by_email.append(Addressee(user.email, user.get_full_name()))
            plan.recipient_rows.append(
                MessageRecipient(message=message, address=user.email, user=user)
            )


def _plan_typed(
    plan: DeliveryPlan,
    *,
    message: Message,
    parsed: Sequence[tuple[str, str, str]],
    following: Following,
    lookups: Lookups,
    taken: set[str],
) -> None:
    """The To/Cc the author typed: one mail addressed as typed; each address is
    (or becomes) a contact following the record."""
    lookups.known_contacts([a for _n, a, _k in parsed])  # one read for them all
    for name, address, kind in parsed:
        key = normalize_email(address)
        if _is_ours(address) or key in taken:
            continue
        taken.add(key)
        contact = lookups.known_contacts([address]).get(key)
        if contact is None:
            contact = new_contact(address, name)
            plan.new_contacts.append(contact)
            lookups.remember(contact)
        if contact.pk is None or contact.pk not in following.contacts:
            plan.follow_contacts.append(contact)
            if contact.pk is not None:
                following.contacts.add(contact.pk)
        plan.typed.append(Addressee(address, name, kind))
        plan.recipient_rows.append(
            MessageRecipient(
                message=message,
                address=address,
                name=(name or contact.name)[:200],
                contact=contact,
            )
        )


def _subscribed_contacts(
    following: Following, *, author_contact_id: int | None, lookups: Lookups
) -> list[Contact]:
    """The subscribed contacts but the author (who is never mailed their own post)."""
    ids = [
        contact_id
        for _user_id, contact_id in following.subscribed
        if contact_id is not None and contact_id != author_contact_id
    ]
    return list(lookups.contacts(ids).values())


def plan_notice(*, message: Message, users: Iterable[User]) -> DeliveryPlan:
    """The plan of a system notice: exactly ``users`` (active, not its author).

    No followers, mentions or contacts, and no permission check: the caller of
    ``notify_users`` chose who must hear about it (the target's own
    ``can_be_opened_by`` decides who may open it). Users who prefer email get a mail.
    """
    plan = DeliveryPlan()
    chosen = {u.pk: u for u in users if u.is_active}
    if message.author_user_id is not None:
        chosen.pop(message.author_user_id, None)
    plan.notified_users = list(chosen.values())
    for user in plan.notified_users:
        if get_profile(user).prefers_email and user.email:
            plan.users_by_email.append(Addressee(user.email, user.get_full_name()))
            plan.recipient_rows.append(
                MessageRecipient(message=message, address=user.email, user=user)
            )
    return plan


def save_recipient_rows(rows: Sequence[MessageRecipient]) -> None:
    """Insert a plan's recipient rows (a fan-out chunk's thousands) in few
    statements, without Django's per-value ``bulk_create`` work; each row gets
    its pk, as from ``bulk_create``."""
    ids = insert_rows(
        MessageRecipient,
        columns=("message_id", "address", "name", "contact_id", "user_id"),
        rows=((r.message_id, r.address, r.name, r.contact_id, r.user_id) for r in rows),
        returning=True,
    )
    for row, pk in zip(rows, ids, strict=True):
        row.pk = row.id = pk
        row._state.adding, row._state.db = False, "default"


def create_notifications(*, message: Message, users: Sequence[User]) -> None:
    create_notifications_for([(message, users)])


def create_notifications_for(
    entries: Iterable[tuple[Message, Sequence[User]]],
) -> None:
    """The inbox notifications of several messages, in one statement."""
    rows = [
        Notification(
            message=message,
            user=user,
            is_emailed=bool(get_profile(user).prefers_email and user.email),
            created_at=message.created_at,
        )
        for message, users in entries
        for user in users
    ]
    if rows:
        Notification.objects.bulk_create(rows, ignore_conflicts=True)


def queue_planned_mail(
    *, message: Message, plan: DeliveryPlan, own_id: bool = True
) -> None:
    """Queue the plan's mail: one per contact and per colleague who wants email,
    one to the typed To/Cc. ``own_id`` False: fresh Message-IDs (a fan-out's
    chunks after the post's own part)."""
    # The rows were just saved (their pks known): no read back.
    delivery.queue_message_copies(
        message=message,
        copies=[[a] for a in plan.external] + ([plan.typed] if plan.typed else []),
        for_users=False,
        own_id=own_id,
        rows=plan.recipient_rows,
    )
    delivery.queue_message_copies(
        message=message,
        copies=[[a] for a in plan.users_by_email],
        for_users=True,
        rows=plan.recipient_rows,
    )
