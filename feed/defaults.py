"""Default feed data: the subtypes followers subscribe to and the activity types.

:func:`ensure_default_data` is idempotent (get-or-create by code/name); the demo
command, tests and the data migration call it.
"""

from __future__ import annotations

from feed.models import ActivityType, Subtype

# code, name, internal, default (subscribed by new followers), sequence
SUBTYPES = [
    (Subtype.DISCUSSION, "Discussions", False, True, 1),
    (Subtype.NOTE, "Notes", True, True, 2),
    (Subtype.ACTIVITY, "Activities", True, True, 3),
    (Subtype.STAGE, "Stage changes", True, True, 4),
    (Subtype.CREATED, "Record created", True, True, 5),
]

# name, category, default delay in days, icon, sequence
ACTIVITY_TYPES = [
    ("Email", ActivityType.Category.EMAIL, 0, "✉", 1),
    ("Call", ActivityType.Category.CALL, 2, "☎", 2),
    ("Meeting", ActivityType.Category.MEETING, 3, "👥", 3),
    ("To-Do", ActivityType.Category.TODO, 5, "✓", 4),
    ("Upload document", ActivityType.Category.UPLOAD, 5, "⇪", 5),
]


def ensure_default_data() -> None:
    """Create the default subtypes and activity types when they are missing."""
    for code, name, internal, default, sequence in SUBTYPES:
        Subtype.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "internal": internal,
                "default": default,
                "sequence": sequence,
            },
        )
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
