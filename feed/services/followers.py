"""Who follows a record: users and contacts, with their subtypes.

``follow`` is idempotent and safe against a concurrent follow (unique row, retried
read); new records get their default followers in one insert per table.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model

from feed.defaults import cached_subtypes
from feed.models import Follower, FollowerRow, Subtype
from knowlix.bulk import insert_rows
from knowlix.models import Contact


def follow(
    *,
    record: Model,
    user: User | None = None,
    contact: Contact | None = None,
    subtypes: Sequence[Subtype] | None = None,
) -> Follower:
    """Make a user or a contact follow ``record`` (idempotent).

    New followers subscribe to the default subtypes (contacts: the non-internal
    ones). ``subtypes`` replaces the subscription of a new or existing follower.
    """
    if (user is None) == (contact is None):
        raise ValueError("follow() needs exactly one of user or contact")
    ct = ContentType.objects.get_for_model(record)
    lookup: dict[str, object] = {"content_type": ct, "object_id": record.pk}
    if user is not None:
        lookup["user"] = user
    else:
        lookup["contact"] = contact
    follower = Follower.objects.filter(**lookup).first()
    created = False
    if follower is None:
        try:
            with transaction.atomic():
                follower = Follower.objects.create(**lookup)
                created = True
        except IntegrityError:  # followed concurrently
            follower = Follower.objects.get(**lookup)
    if subtypes is not None:
        follower.subtypes.set(subtypes)
    elif created:
        follower.subtypes.add(*_default_subtypes(for_contact=contact is not None))
    return follower


def _default_subtypes(*, for_contact: bool) -> list[Subtype]:
    """What a new follower subscribes to: the default subtypes (contacts: the
    non-internal ones)."""
    return [
        s
        for s in cached_subtypes().values()
        if s.default and not (for_contact and s.internal)
    ]


def unfollow(
    *, record: Model, user: User | None = None, contact: Contact | None = None
) -> None:
    ct = ContentType.objects.get_for_model(record)
    qs = Follower.objects.filter(content_type=ct, object_id=record.pk)
    if user is not None:
        qs.filter(user=user).delete()
    if contact is not None:
        qs.filter(contact=contact).delete()


def _follow_defaults(
    record: Model,
    author: User | None,
    *,
    is_new: bool = False,
    has_followers: bool = True,
) -> list[FollowerRow] | None:
    """Make the record's people follow it. On a new record, returns all its
    followers' subscriptions (known exactly, since they were just written)."""
    users, contact = _default_people(record, author)
    if is_new:
        return _follow_new_record(
            record, users=users, contact=contact, has_followers=has_followers
        )
    for user in users:
        follow(record=record, user=user)
    if contact is not None:
        follow(record=record, contact=contact)
    return None


def _default_people(
    record: Model, author: User | None
) -> tuple[list[User], Contact | None]:
    """Who follows a record by default: its users and the author, its contact."""
    people = list(getattr(record, "feed_users", []) or [])
    # A record created for a team (knowlix.teams.apply_team): its members too.
    people += getattr(record, "team_followers", ())
    if author is not None and getattr(author, "pk", None):
        people.append(author)
    users = list({u.pk: u for u in people}.values())
    return users, getattr(record, "feed_contact", None)


def new_record_followers(*, record: Model, author: User | None) -> list[FollowerRow]:
    """The followers ``notify_record_created(is_new=True)`` gave ``record``, as
    ``post_message(followers=...)`` rows, without reading them back.

    Only right after ``feed.services.create_record`` of a new record, before
    anything else changes who follows it (its "created" notice changes nothing)."""
    users, contact = _default_people(record, author)
    people: list[tuple[int | None, int | None]] = [(u.pk, None) for u in users]
    if contact is not None:
        people.append((None, contact.pk))
    rows: list[FollowerRow] = []
    for user_id, contact_id in people:
        subtypes = _default_subtypes(for_contact=contact_id is not None)
        rows += [(user_id, contact_id, s.pk) for s in subtypes] or [
            (user_id, contact_id, None)
        ]
    return rows


def _follow_new_record(
    record: Model,
    *,
    users: list[User],
    contact: Contact | None,
    has_followers: bool = True,
) -> list[FollowerRow]:
    """``follow()`` for each of them, at once, on a record created in the current
    transaction: no one else can follow it concurrently, so the missing followers
    are inserted together, with no savepoint each. Returns every follower's
    subscriptions, those already there (one read, unless ``has_followers`` is
    False: a row just inserted with a fresh id) and the new ones."""
    return _follow_new_records([(record, users, contact, has_followers)])[0]


NewFollowers = tuple[Model, list[User], Contact | None, bool]


def _follow_new_records(
    entries: Sequence[NewFollowers],
) -> list[list[FollowerRow]]:
    """:func:`_follow_new_record` for several records: one insert of the followers
    and one of their subscriptions for all of them."""
    all_rows: list[list[FollowerRow]] = []
    # The new followers as rows (content type, record, user, contact): written by
    # insert_rows, no model instance each (~20 µs a follower with its subtypes).
    new: list[tuple[int, int, int | None, int | None]] = []
    entry_of: list[int] = []  # the entry of each new follower
    for entry, (record, users, contact, has_followers) in enumerate(entries):
        ct = ContentType.objects.get_for_model(record)
        rows: list[FollowerRow] = []
        if has_followers:
            rows = list(
                Follower.objects.filter(content_type=ct, object_id=record.pk)
                .order_by("pk")
                .values_list("user_id", "contact_id", "subtypes")
            )
        followed = {(user_id, contact_id) for user_id, contact_id, _s in rows}
        people: list[tuple[int | None, int | None]] = [(u.pk, None) for u in users]
        if contact is not None:
            people.append((None, contact.pk))
        if record.pk is None or any(p == (None, None) for p in people):
            raise ValueError("_follow_new_records() needs saved records and people")
        new += [(ct.pk, record.pk, *p) for p in people if p not in followed]
        entry_of += [entry] * (len(new) - len(entry_of))
        all_rows.append(rows)
    if not new:
        return all_rows
    ids = insert_rows(
        Follower,
        columns=("content_type_id", "object_id", "user_id", "contact_id"),
        rows=new,
        returning=True,
    )
    links_of: dict[int, list[int]] = {}
    links = []
    for follower_id, (_ct, _pk, _user_id, contact_id) in zip(ids, new, strict=True):
        subtypes = _default_subtypes(for_contact=contact_id is not None)
        links_of[follower_id] = [subtype.pk for subtype in subtypes]
        links += [(follower_id, subtype.pk) for subtype in subtypes]
    insert_rows(
        Follower.subtypes.through, columns=("follower_id", "subtype_id"), rows=links
    )
    # Each entry's new followers, in insertion order, after its existing ones.
    for follower_id, row, entry in zip(ids, new, entry_of, strict=True):
        _ct, _pk, user_id, contact_id = row
        all_rows[entry] += [
            (user_id, contact_id, pk) for pk in links_of[follower_id]
        ] or [(user_id, contact_id, None)]
    return all_rows
