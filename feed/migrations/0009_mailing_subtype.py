"""The "Mailings" subtype (feed.defaults.SUBTYPES) on installs made before it."""

from django.db import migrations


def create_mailing_subtype(apps, schema_editor):
    Subtype = apps.get_model("feed", "Subtype")
    Subtype.objects.get_or_create(
        code="mailing",
        defaults={"name": "Mailings", "internal": False, "default": False, "sequence": 6},
    )


class Migration(migrations.Migration):
    dependencies = [("feed", "0008_message_fanout")]

    operations = [
        migrations.RunPython(create_mailing_subtype, migrations.RunPython.noop)
    ]
