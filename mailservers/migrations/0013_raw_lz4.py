"""A queued mail's bytes are compressed with lz4 on PostgreSQL (a fraction of the
default pglz's CPU: a mailing writes 100,000 rows of about 2 KB, just over the
size where PostgreSQL compresses a row). A server built without lz4 keeps pglz.
"""

from django.db import migrations

LZ4 = (
    "DO $$ BEGIN ALTER TABLE mailservers_outgoingmail ALTER COLUMN raw "
    "SET COMPRESSION {}; EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
)


def set_compression(method):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(LZ4.format(method))

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("mailservers", "0012_drop_covered_indexes"),
    ]

    operations = [
        migrations.RunPython(set_compression("lz4"), set_compression("pglz")),
    ]
