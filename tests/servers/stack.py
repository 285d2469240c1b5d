"""The production services run natively, exactly as docker-compose.yml runs them.

Each :class:`Service` is ``scripts/service NAME`` in a session of its own, its output
in a log file. :meth:`Service.stop` sends the one SIGTERM ``docker compose stop``
sends (to the main process only) and reports every process of the session still
alive after the grace period.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "scripts" / "service"


def session_processes(sid: int) -> list[str]:
    """``pid command`` of every live process whose session id is ``sid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parens
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found.append(f"{entry.name} {cmd.strip()}")
    return found


class Service:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(SERVICE), name], cwd=ROOT, env=env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.log):
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: no {pattern!r} in its log:\n{self.log}")

    def processes(self) -> list[str]:
        return session_processes(self.proc.pid)

    def stop(self, grace: float = 10.0) -> list[str]:
        """One SIGTERM to the main process; what is still alive after ``grace``."""
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the main process, or it stays a zombie
            if not self.processes():
                break
            time.sleep(0.1)
        left = self.processes()
        self._log.close()
        return left

    def kill(self) -> None:
        """Clean-up after a failed test: SIGKILL whatever the session still runs."""
        for line in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        self.proc.wait(timeout=10)
