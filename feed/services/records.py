"""Writes on business records: create and update, with their feed events.

Views, routing and commands create records through these functions so that the
"record created" and "stage changed" notifications are never forgotten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import Field, signals

from feed.services import notices as feed_services
from feed.services.assignments import notify_assignment
from knowlix.bulk import insert_instances
from knowlix.models import Record


def _field_display(record: Record, field_name: str) -> str:
    field = record._meta.get_field(field_name)
    if getattr(field, "choices", None):
        return str(getattr(record, f"get_{field_name}_display")())
    value = getattr(record, field_name)
    if isinstance(value, User):  # people by their full name, as everywhere
        return value.get_full_name() or value.get_username()
    return "" if value is None else str(value)


# Its own transaction, or the caller's without a savepoint (routing of incoming mail
# creates records inside its own savepoint, which already rolls all of it back).
@transaction.atomic(savepoint=False)
def create_record(*, record: Record, author: User | None) -> Record:
    """Save a new record, make its people follow it and post "created" in its feed."""
    return create_records([(record, author)])[0]


@transaction.atomic(savepoint=False)
def create_records(
    entries: Sequence[tuple[Record, User | None]],
) -> list[Record]:
    """:func:`create_record` for several ``(record, author)``: one insert per record
    kind, then their followers and "created" notices together."""
    fresh: dict[type[Record], list[Record]] = defaultdict(list)
    notices = []
    for record, author in entries:
        if record.owner_id is None and author is not None:
            record.owner = author
        # A row whose id the database assigns now (ids are never reused) has no
        # followers yet: they need not be read before being written.
        is_new = record._state.adding and record.pk is None
        if is_new:
            fresh[type(record)].append(record)
        else:
            record.save()
        notices.append((record, author, is_new))
    for model, records in fresh.items():
        if _saves_plainly(model):
            insert_instances(records)  # sets their ids
        else:
            for record in records:
                record.save()
    feed_services.notify_records_created(notices)
    return [record for record, _author in entries]


def _saves_plainly(model: type[Record]) -> bool:
    """True if saving a new ``model`` row is a plain INSERT: no ``save()`` override
    and no save signal receivers, which an insert of many rows would skip."""
    return (
        model.save is models.Model.save
        and not signals.pre_save.has_listeners(model)
        and not signals.post_save.has_listeners(model)
    )


@transaction.atomic
def update_record(
    *, record: Record, author: User | None, changed_fields: list[str]
) -> Record:
    """Save changed fields; tracked ones (stage, assignee...) are posted in the feed."""
    old = type(record)._default_manager.select_for_update().get(pk=record.pk)
    changes = []
    for name in record.TRACKED_FIELDS:
        before, after = _field_display(old, name), _field_display(record, name)
        if name in changed_fields and before != after:
            field = record._meta.get_field(name)
            assert isinstance(field, Field)  # tracked fields are the record's own
            label = str(field.verbose_name).capitalize()
            changes.append((label, before, after))
    record.save()
    if changes:
        feed_services.post_tracking(record=record, author=author, changes=changes)
    _notify_new_assignee(record, old, author, changed_fields)
    return record


def _notify_new_assignee(
    record: Record, old: Record, author: User | None, changed_fields: list[str]
) -> None:
    """Whoever the record is now assigned to hears about it. A tracked assignee
    field already does: its change is posted, and the new assignee follows."""
    field = record.ASSIGNEE_FIELD
    if field not in changed_fields or field in record.TRACKED_FIELDS:
        return
    assignee = getattr(record, field)
    if assignee is not None and assignee.pk != getattr(old, f"{field}_id"):
        notify_assignment(record=record, assignee=assignee, author=author)
