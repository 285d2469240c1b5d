"""Who holds a poll lease, so that a lease left by a dead process on this machine
is taken over at once instead of after it expires.

The owner is ``host|pid-namespace|pid|start-time``: the host and PID namespace say
whether we can see the process at all (a container of its own has its own), and
the start time (``/proc/<pid>/stat``, in clock ticks since boot) tells the process
apart from a later one that reuses its pid. Where ``/proc`` is missing, the owner
is "" and leases are only ever taken over once expired.
"""

from __future__ import annotations

import os
import socket

PROC = "/proc"


def _start_time(pid: int) -> str | None:
    """The process's start time, or None if there is no such process."""
    try:
        with open(f"{PROC}/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Field 22 of proc(5) (starttime); fields[0] here is field 3 (state).
    return fields[19] if len(fields) > 19 else None


def _namespace() -> str:
    try:
        return os.readlink(f"{PROC}/self/ns/pid")
    except OSError:
        return ""


def current_owner() -> str:
    """This process, as a lease owner ("" where it cannot be told apart)."""
    pid = os.getpid()
    start, namespace = _start_time(pid), _namespace()
    if start is None or not namespace:
        return ""
    return "|".join([socket.gethostname(), namespace, str(pid), start])


def is_dead(owner: str) -> bool:
    """True only if ``owner`` ran where this process can see it, and is gone.

    Another host, another PID namespace, or an unknown owner: False (not ours to
    judge; the lease expires)."""
    parts = owner.split("|")
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    host, namespace, pid, start = parts
    if host != socket.gethostname() or namespace != _namespace():
        return False
    return _start_time(int(pid)) != start
