"""``manage.py route_email``: one JSON object, exit status by whether it was handled."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.management import CommandError, call_command

from knowlix.models import Ticket
from tests.routing.conftest import DATA, eml


def run(*args: str, stdin: bytes = b"") -> dict:
    out = io.StringIO()
    real_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        call_command("route_email", *args, stdout=out)
    finally:
        sys.stdin = real_stdin
    return json.loads(out.getvalue())


def test_file_argument_creates_a_record_and_prints_routes(aliases, tmp_path):
    """A new mail prints outcome routed with the created record and message."""
    path = tmp_path / "m.eml"
    path.write_bytes(eml("new_ticket.eml"))
    data = run(str(path))
    ticket = Ticket.objects.get()
    assert data["outcome"] == "routed"
    assert data["routes"][0]["action"] == "created"
    assert data["routes"][0]["record"] == f"knowlix.ticket:{ticket.pk}"
    assert isinstance(data["routes"][0]["message"], int)
    assert "reason" not in data


def test_stdin_is_read_without_a_file(aliases):
    """Piped from an MTA: the message comes on stdin."""
    data = run(stdin=eml("new_ticket.eml"))
    assert data["outcome"] == "routed"


def test_duplicate_and_refusal_print_a_reason(aliases):
    """Every outcome but routed carries a reason; exit status stays 0."""
    raw = eml("new_ticket.eml")
    run(stdin=raw)
    duplicate = run(stdin=raw)
    assert duplicate == {
        "outcome": "duplicate",
        "routes": [],
        "reason": duplicate["reason"],
    }
    assert duplicate["reason"]
    refused = run(stdin=eml("unknown_address.eml"))
    assert refused["outcome"] == "refused" and refused["reason"]


def test_unparseable_input_is_quarantined_with_status_zero(aliases):
    """Garbage is stored in quarantine: handled, so no error status."""
    raw = (DATA / "corpus" / "gen_binary_noise.eml").read_bytes()
    data = run(stdin=raw)
    assert data["outcome"] == "quarantined"


def test_unreadable_file_is_an_error(db, tmp_path):
    """A message that cannot even be read exits non-zero (the MTA retries)."""
    with pytest.raises(CommandError):
        call_command("route_email", str(tmp_path / "missing.eml"), stdout=io.StringIO())


def test_exit_status_from_a_real_process(tmp_path):
    """Run as an MTA would: a missing file exits 1 and says why on stderr."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "manage.py", "route_email", str(tmp_path / "none.eml")],
        cwd=DATA.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "cannot read the message" in proc.stderr


def test_mta_pipe_into_a_real_process(tmp_path):
    """Piped like Postfix does: stdin in, one JSON line out, exit status 0."""
    import os
    import subprocess

    env = dict(
        os.environ,
        KNOWLIX_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'pipe.sqlite3'}",
        CELERY_BROKER_URL="memory://",  # the polite bounce is queued, not sent
    )
    root = DATA.parent.parent
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "route_email"],
        cwd=root,
        env=env,
        input=eml("unknown_address.eml"),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert data["outcome"] == "refused"
    assert data["routes"] == [] and data["reason"]
