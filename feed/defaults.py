"""Default feed data: the subtypes followers subscribe to and the activity types.

:func:`ensure_default_data` is idempotent (get-or-create by code/name); the demo
command, tests and the data migration call it. Subtypes are reference data read on
every post: :func:`cached_subtypes` keeps them per process, dropped by
:func:`ensure_default_data`, by ``migrate``/``flush`` and after ``CACHE_SECONDS``.
"""

from __future__ import annotations

import threading
import time

from django.db import transaction

from feed.models import ActivityType, Subtype

# code, name, internal, default (subscribed by new followers), sequence
SUBTYPES = [
    (Subtype.DISCUSSION, "Discussions", False, True, 1),
    (Subtype.NOTE, "Notes", True, True, 2),
    (Subtype.ACTIVITY, "Activities", True, True, 3),
    (Subtype.STAGE, "Stage changes", True, True, 4),
    (Subtype.CREATED, "Record created", True, True, 5),
    # Not default: only a mailing's audience gets it, and nothing else from there.
    (Subtype.MAILING, "Mailings", False, False, 6),
]

# name, category, default delay in days, icon, sequence
ACTIVITY_TYPES = [
    ("Email", ActivityType.Category.EMAIL, 0, "✉", 1),
    ("Call", ActivityType.Category.CALL, 2, "☎", 2),
    ("Meeting", ActivityType.Category.MEETING, 3, "👥", 3),
    ("To-Do", ActivityType.Category.TODO, 5, "✓", 4),
    ("Upload document", ActivityType.Category.UPLOAD, 5, "⇪", 5),
]


CACHE_SECONDS = 30.0
_lock = threading.Lock()
_subtypes: dict[str, Subtype] | None = None
_loaded_at = 0.0
# Subtypes created in a transaction that has not committed yet may still vanish
# (a rollback): they are not cached until it commits.
_uncommitted = False


def cached_subtypes() -> dict[str, Subtype]:
    """Every subtype by code, read once per process (treat them as read-only)."""
    global _subtypes, _loaded_at
    with _lock:
        if _uncommitted:
            return {s.code: s for s in Subtype.objects.all()}
        if _subtypes is None or time.monotonic() - _loaded_at > CACHE_SECONDS:
            _subtypes = {s.code: s for s in Subtype.objects.all()}
            _loaded_at = time.monotonic()
        return _subtypes


def clear_subtype_cache(*, uncommitted: bool | None = None) -> None:
    global _subtypes, _uncommitted
    with _lock:
        _subtypes = None
        if uncommitted is not None:
            _uncommitted = uncommitted


def ensure_default_data() -> None:
    """Create the default subtypes and activity types when they are missing."""
    created = False
    for code, name, internal, default, sequence in SUBTYPES:
        created |= Subtype.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "internal": internal,
                "default": default,
                "sequence": sequence,
            },
        )[1]
    for name, category, delay, icon, sequence in ACTIVITY_TYPES:
        ActivityType.objects.get_or_create(
            name=name,
            defaults={
                "category": category,
                "default_delay_days": delay,
                "icon": icon,
                "sequence": sequence,
            },
        )
    if created and transaction.get_connection().in_atomic_block:
        clear_subtype_cache(uncommitted=True)
        transaction.on_commit(lambda: clear_subtype_cache(uncommitted=False))
    else:
        clear_subtype_cache()
