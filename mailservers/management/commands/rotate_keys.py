"""``python manage.py rotate_keys``: re-encrypt every stored secret with the newest key.

Put the new key first in ``KNOWLIX_ENCRYPTION_KEY`` (keep the old ones after it), run
this, then drop the old keys. Every ``EncryptedTextField`` of every model is
rewritten (server passwords, OAuth tokens, DKIM keys...), one locked row at a time.
The ciphertext is read and written as stored: nothing is decrypted to plain text.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, models, transaction

from knowlix.crypto import EncryptedTextField, rotate_value


def encrypted_columns() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_models():
        columns = [
            f.column
            for f in model._meta.concrete_fields
            if isinstance(f, EncryptedTextField)
        ]
        if columns and not model._meta.proxy:
            found.append((model, columns))
    return found


def rotate_row(model: type[models.Model], pk: int, columns: list[str]) -> bool:
    """Re-encrypt one row's columns under its row lock; False if it vanished."""
    q = connection.ops.quote_name
    table, pk_col = q(model._meta.db_table), q(model._meta.pk.column)
    with transaction.atomic():
        if not list(
            model._default_manager.select_for_update().filter(pk=pk).values("pk")
        ):
            return False
        with connection.cursor() as cursor:
            cols = ", ".join(q(c) for c in columns)
            cursor.execute(f"SELECT {cols} FROM {table} WHERE {pk_col} = %s", [pk])
            stored = cursor.fetchone()
            sets = ", ".join(f"{q(c)} = %s" for c in columns)
            cursor.execute(
                f"UPDATE {table} SET {sets} WHERE {pk_col} = %s",
                [*(rotate_value(v) for v in stored), pk],
            )
    return True


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first key of KNOWLIX_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model, columns in encrypted_columns():
            pks = list(model._default_manager.values_list("pk", flat=True))
            count = sum(rotate_row(model, pk, columns) for pk in pks)
            self.stdout.write(f"{model._meta.label} ({', '.join(columns)}): {count}")
            total += count
        self.stdout.write(f"re-encrypted {total} row(s)")
