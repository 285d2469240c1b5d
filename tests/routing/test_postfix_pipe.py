"""scripts/postfix-pipe, as Postfix's pipe(8) runs it: stored mail exits 0, a
database it cannot reach exits 75 (EX_TEMPFAIL: Postfix retries, never bounces)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from routing.models import InboundMail
from tests.servers.celery_fixtures import worker_env

PIPE = Path(__file__).resolve().parents[2] / "scripts" / "postfix-pipe"
RAW = (
    b"From: Dana <dana@customer.example>\r\nTo: helpdesk@catchall.test\r\n"
    b"Subject: Help\r\nMessage-ID: <pipe-1@customer.example>\r\n\r\nHello\r\n"
)


def run_pipe(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(PIPE), "postfix"], input=RAW, capture_output=True, timeout=120,
        env={**env, "PYTHON": sys.executable},
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_pipe_stores_the_message():
    """The message is routed and stored; Postfix sees success."""
    done = run_pipe(worker_env("memory://"))
    assert done.returncode == 0, done.stderr
    stored = InboundMail.objects.get(message_id="<pipe-1@customer.example>")
    assert stored.source == "postfix"


def test_pipe_defers_when_the_database_is_down(tmp_path):
    """No database: exit 75, so the sender gets no bounce and Postfix retries."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
        "KNOWLIX_VAR_DIR": str(tmp_path),
    }
    done = run_pipe(env)
    assert done.returncode == 75, done.stderr
