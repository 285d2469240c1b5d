"""New secrets for a deployment, and the test that refuses weak ones.

Pure: imports no settings, so ``manage.py generate_keys`` works before any key is
set, whatever ``DEBUG`` is (``manage.py`` runs it without loading Django).
"""

from __future__ import annotations

import secrets
import string

from cryptography.fernet import Fernet

# Django's own check (security.W009) calls a key weak below these figures.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
# Literal in .env files and in shell assignments (no quote, `$`, `#`, space, nor `~`,
# which sh expands to a home directory at the start or after a `:`).
SECRET_KEY_ALPHABET = string.ascii_letters + string.digits + "-_.:@+"


def new_secret_key() -> str:
    """A 64-character random SECRET_KEY of :data:`SECRET_KEY_ALPHABET`."""
    return "".join(secrets.choice(SECRET_KEY_ALPHABET) for _ in range(64))


def new_encryption_key() -> str:
    """A new Fernet key for KNOWLIX_ENCRYPTION_KEY."""
    return Fernet.generate_key().decode()


def weak_secret_key_reason(key: str, known_defaults: tuple[str, ...] = ()) -> str:
    """Why ``key`` must not protect a production site, or "" when it is fine."""
    if key in known_defaults or key.startswith("django-insecure-"):
        return "it is a published default"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has fewer than {SECRET_KEY_MIN_LENGTH} characters"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE:
        return f"it has fewer than {SECRET_KEY_MIN_UNIQUE} different characters"
    return ""


def env_lines() -> str:
    """The two lines to paste into ``.env``."""
    return (
        f"SECRET_KEY={new_secret_key()}\n"
        f"KNOWLIX_ENCRYPTION_KEY={new_encryption_key()}\n"
    )


def main() -> None:
    print(env_lines(), end="")


if __name__ == "__main__":
    main()
