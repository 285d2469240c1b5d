"""`manage.py runall` (what `make run` starts) stops its whole process tree — web
server, Celery worker with its pool and beat, mail catcher — within 10 seconds of
one SIGTERM or a terminal's Ctrl+C, printing no traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers.net import HOST, free_port

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 90  # two busy cores: Django, Celery and beat take a while to start


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            if fields[0] != b"Z":
                parents[int(entry)] = int(fields[1])
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found.update(children)
        todo += children
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def wait_until_up(proc: subprocess.Popen, web: int, catcher: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        worker_ready = "ready." in log.read_text()
        if listening(web) and listening(catcher) and worker_ready:
            with urllib.request.urlopen(f"http://{HOST}:{web}/login/") as response:
                assert response.status == 200
            return
        time.sleep(0.5)
    raise AssertionError("runall did not start:\n" + log.read_text()[-3000:])


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_runall_stops_every_process_within_ten_seconds(tmp_path, how):
    """One SIGTERM to runall (or SIGINT to its terminal's process group): every
    process it started is gone within 10 s, and nothing printed a traceback."""
    web, catcher = free_port(), free_port()
    # As a shell would start it: not with the browser tests' async override.
    inherited = {
        k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env = {
        **inherited,
        "KNOWLIX_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "PORT": str(web),
        "KNOWLIX_MAILCATCHER": f"{HOST}:{catcher}",
        "KNOWLIX_SMTP_URL": f"smtp://{HOST}:{catcher}",
        "DEBUG": "true",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    log = tmp_path / "runall.log"
    with log.open("wb") as out:
        # Its own session, like a shell's foreground job: Ctrl+C is a SIGINT to
        # this process group (runall's children run in sessions of their own).
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runall"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_up(proc, web, catcher, log)
        tree = descendants(proc.pid)
        assert len(tree) >= 4, tree  # web, worker (+ pool, beat), mail catcher
        started = time.monotonic()
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
        left = sorted(pid for pid in tree if alive(pid))
        elapsed = time.monotonic() - started
        assert left == [], f"still running after {elapsed:.1f} s: {left}"
        assert elapsed < 10
        assert not listening(web) and not listening(catcher)
        output = log.read_text()
        assert "Traceback" not in output, output[-3000:]
        assert "Stopped." in output
        print(f"runall stopped {len(tree)} processes in {elapsed:.1f} s ({how})")
    finally:
        for pid in [proc.pid, *descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=5)
