"""Secrets at rest: encrypted in the database, readable in Python, keys rotate."""

import pytest
from cryptography.fernet import Fernet

from knowlix import crypto


def test_encrypt_round_trip_and_rotation(settings):
    """A value encrypted with an old key still decrypts and rotates to the new key."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.KNOWLIX_ENCRYPTION_KEY = old
    stored = crypto.encrypt("s3cret")
    assert stored.startswith("fernet:") and "s3cret" not in stored
    settings.KNOWLIX_ENCRYPTION_KEY = f"{new},{old}"
    assert crypto.decrypt(stored) == "s3cret"
    rotated = crypto.rotate_value(stored)
    settings.KNOWLIX_ENCRYPTION_KEY = new
    assert crypto.decrypt(rotated) == "s3cret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)
