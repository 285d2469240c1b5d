"""Create the module aliases on every install: helpdesk@ (tickets), sales@
(opportunities), expenses@ (expenses), jobs@ (job applications).

Once: an alias an admin deletes or renames afterwards is never created again (not
by a later migration, nor by ``manage.py demo``). An existing alias of the same name
is left as it is.
"""

from __future__ import annotations

from django.db import migrations

MODULE_ALIASES = {
    "helpdesk": "ticket",
    "sales": "opportunity",
    "expenses": "expense",
    "jobs": "jobapplication",
}


def create_module_aliases(apps, schema_editor) -> None:  # noqa: ANN001
    alias_model = apps.get_model("routing", "Alias")
    content_types = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for name, model in MODULE_ALIASES.items():
        # On a fresh database the content types are created after the migrations
        # (post_migrate): create the ones needed now, as that would.
        content_type, _created = content_types.objects.using(db).get_or_create(
            app_label="knowlix", model=model
        )
        alias_model.objects.using(db).get_or_create(
            name=name, defaults={"content_type": content_type}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("knowlix", "0001_initial"),
        ("routing", "0002_alias_parent_creator_status"),
    ]

    operations = [
        migrations.RunPython(create_module_aliases, migrations.RunPython.noop),
    ]
