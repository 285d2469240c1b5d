"""Keys without guesswork and the documented production settings (TLS proxy).

Each check runs ``manage.py`` in a fresh process, as an operator does: the settings
refuse to load with a missing, weak or published key once DEBUG is off.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from feed import services
from feed.attachments import AttachmentInput
from feed.templatetags.feed_tags import attachment_url
from knowlix.keys import SECRET_KEY_ALPHABET, weak_secret_key_reason
from tests.deploy.test_stack import documented_environment
from tests.servers.stack import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        # The browser fixture's async opt-out (same test process) is no deployment's.
        if k
        not in (
            "SECRET_KEY",
            "KNOWLIX_ENCRYPTION_KEY",
            "DEBUG",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def new_keys() -> dict[str, str]:
    done = manage("generate_keys", DEBUG="false")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_generate_keys_works_with_debug_off_and_no_key_set():
    """A fresh deployment (DEBUG=false, nothing set) gets a usable pair of keys."""
    first, second = new_keys(), new_keys()
    assert set(first) == {"SECRET_KEY", "KNOWLIX_ENCRYPTION_KEY"}
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert weak_secret_key_reason(first["SECRET_KEY"]) == ""
    Fernet(first["KNOWLIX_ENCRYPTION_KEY"].encode())  # a valid Fernet key
    assert not set("'\"$# ") & set(first["SECRET_KEY"])  # safe in .env and shells


def test_generate_encryption_key_works_with_debug_off():
    """The older command no longer needs the key it is asked to create."""
    done = manage("generate_encryption_key", DEBUG="false")
    assert done.returncode == 0, done.stderr
    Fernet(done.stdout.strip().encode())


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("short-key", "fewer than 50 characters"),
        ("ab" * 40, "fewer than 5 different characters"),
        ("dev-only-insecure-secret-key-change-me", "published default"),
        ("django-insecure-" + "x1y2z3w4v5" * 6, "published default"),
    ],
)
def test_weak_secret_key_refuses_to_start(secret, reason):
    """With DEBUG=false a weak or default SECRET_KEY stops every command."""
    keys = new_keys()
    done = manage("check", DEBUG="false", SECRET_KEY=secret,
                  KNOWLIX_ENCRYPTION_KEY=keys["KNOWLIX_ENCRYPTION_KEY"])  # fmt: skip
    assert done.returncode != 0
    assert "SECRET_KEY is too weak" in done.stderr and reason in done.stderr


def test_development_encryption_key_refused_with_debug_off():
    """The development Fernet key, published in the source, is refused in production."""
    keys = new_keys()
    done = manage("check", DEBUG="false", SECRET_KEY=keys["SECRET_KEY"],
                  KNOWLIX_ENCRYPTION_KEY="ZGV2LW9ubHktaW5zZWN1cmUta2V5LWNoYW5nZS1tZSE=")  # fmt: skip
    assert done.returncode != 0 and "published development key" in done.stderr


def test_documented_environment_passes_check_deploy(tmp_path):
    """docs/deploy.md's environment, with new keys, leaves check --deploy silent."""
    env = {**documented_environment(), **new_keys(), "KNOWLIX_VAR_DIR": str(tmp_path)}
    done = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_names_a_missing_proxy_setting(tmp_path):
    """Without SECURE_SSL_REDIRECT the same check warns (security.W008)."""
    env = {**documented_environment(), **new_keys(), "KNOWLIX_VAR_DIR": str(tmp_path),
           "SECURE_SSL_REDIRECT": "false"}  # fmt: skip
    done = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert done.returncode != 0 and "security.W008" in done.stdout + done.stderr


def test_proxy_header_makes_requests_secure(client, settings):
    """Behind the proxy, X-Forwarded-Proto: https is what tells Django it is HTTPS."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    plain = client.get("/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    proxied = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200


@pytest.mark.django_db
def test_pages_are_never_framed_but_the_preview_is_same_origin(client, alice, ticket):
    """X-Frame-Options DENY everywhere (check --deploy's W019), except the
    attachment the feed previews in a same-origin iframe."""
    message = services.post_message(
        record=ticket, kind="note", author=alice,
        attachments=[AttachmentInput(filename="q.pdf", content=b"%PDF",
                                     mimetype="application/pdf")],
    )  # fmt: skip
    client.force_login(alice)
    assert client.get("/")["X-Frame-Options"] == "DENY"
    preview = client.get(attachment_url(message.attachments.get()))
    assert preview["X-Frame-Options"] == "SAMEORIGIN"


def test_every_key_character_is_literal_when_sh_reads_the_env_file(tmp_path):
    """scripts/postfix-pipe sources KNOWLIX_ENV_FILE with sh: a generated key must
    come back unchanged wherever its characters fall (a `~` after `:` became
    the home directory)."""
    chars = SECRET_KEY_ALPHABET
    values = [f"{a}{b}{a}" for a in chars for b in ":@+-."] + [chars, chars[::-1]]
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"K{n}={v}\n" for n, v in enumerate(values)))
    script = f'set -a; . "{env_file}"; env'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert [got[f"K{n}"] for n in range(len(values))] == values
