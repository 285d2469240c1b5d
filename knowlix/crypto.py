"""Secrets at rest: Fernet encryption keyed by ``KNOWLIX_ENCRYPTION_KEY``.

The setting holds comma-separated keys, newest first (MultiFernet): new values are
encrypted with the first key, any listed key decrypts, and ``rotate_value`` re-encrypts
with the newest. Stored values start with ``fernet:`` so plain text is never mistaken
for a token.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

PREFIX = "fernet:"


class DecryptionError(Exception):
    """A stored secret cannot be read with any configured key."""

    user_message = (
        "A stored secret cannot be decrypted: was KNOWLIX_ENCRYPTION_KEY changed?"
    )


@functools.cache
def _fernet(key_setting: str) -> MultiFernet:
    keys = [k.strip() for k in key_setting.split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "KNOWLIX_ENCRYPTION_KEY must be comma-separated Fernet keys "
            "(generate one with `python manage.py generate_encryption_key`)"
        ) from exc


def get_fernet() -> MultiFernet:
    return _fernet(settings.KNOWLIX_ENCRYPTION_KEY)


def encrypt(value: str) -> str:
    if value == "":
        return ""
    return PREFIX + get_fernet().encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise DecryptionError(DecryptionError.user_message)
    try:
        return get_fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(DecryptionError.user_message) from exc


def rotate_value(stored: str) -> str:
    """Re-encrypt a stored value with the newest key (unchanged when empty)."""
    if not stored:
        return stored
    token = stored[len(PREFIX) :].encode()
    return PREFIX + get_fernet().rotate(token).decode()


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plain value.

    Not searchable or orderable by content (the ciphertext is random each time).
    """

    description = "Text encrypted at rest with KNOWLIX_ENCRYPTION_KEY"

    def from_db_value(
        self, value: str | None, expression: object, connection: BaseDatabaseWrapper
    ) -> str | None:
        if value is None:
            return value
        return decrypt(value)

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(value)
