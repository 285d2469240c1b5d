"""Default subtypes and activity types (the same rows as feed.defaults, idempotent)."""

from django.db import migrations

from feed.defaults import ACTIVITY_TYPES, SUBTYPES


def create_defaults(apps, schema_editor):
    Subtype = apps.get_model("feed", "Subtype")
    ActivityType = apps.get_model("feed", "ActivityType")
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
                "category": str(category),
                "default_delay_days": delay,
                "icon": icon,
                "sequence": sequence,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("feed", "0004_message_page_index")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
