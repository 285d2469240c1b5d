"""Who holds a poll lease, so that a lease left by a dead process on this machine
is taken over at once instead of after it expires.

The owner is ``boot-id|pid-namespace|pid|start-time``: the kernel's boot id (new
at every boot of every machine, even of cloned ones with the same host name) and
the PID namespace say whether we can see the process at all (a container of its
own has its own namespace), and the start time (``/proc/<pid>/stat``, in clock
ticks since boot) tells the process apart from a later one that reuses its pid.
Where ``/proc`` is missing, the owner is "" and leases are only ever taken over
once expired.
"""

from __future__ import annotations

import os

PROC = "/proc"


def _start_time(pid: int) -> str | None:
    """The process's start time, or None if there is no such process. Raises
    ``OSError`` when that cannot be told (no access, out of file descriptors)."""
    try:
        with open(f"{PROC}/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        # Gone, or hidden from us (/proc mounted with hidepid): ask the kernel.
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, OverflowError):  # no such pid, or none can be
            return None
        raise  # it exists (perhaps another user's): we cannot read it
    fields = text.rsplit(")", 1)[-1].split()
    # Field 22 of proc(5) (starttime); fields[0] here is field 3 (state).
    return fields[19] if len(fields) > 19 else None


def _namespace() -> str:
    try:
        return os.readlink(f"{PROC}/self/ns/pid")
    except OSError:
        return ""


def _boot_id() -> str:
    try:
        with open(f"{PROC}/sys/kernel/random/boot_id", encoding="ascii") as boot:
            return boot.read().strip()
    except OSError:
        return ""


_owner: tuple[int, str] | None = None  # (pid, owner): computed once per process


def current_owner() -> str:
    """This process, as a lease owner ("" where it cannot be told apart)."""
    global _owner
    pid = os.getpid()
    if _owner is not None and _owner[0] == pid:
        return _owner[1]
    owner = _describe(pid)
    if owner:  # "" may be passing (out of file descriptors): ask again next time
        _owner = (pid, owner)
    return owner


def _describe(pid: int) -> str:
    try:
        start = _start_time(pid)
    except OSError:
        start = None
    boot, namespace = _boot_id(), _namespace()
    if start is None or not boot or not namespace:
        return ""
    return "|".join([boot, namespace, str(pid), start])


def is_dead(owner: str) -> bool:
    """True only if ``owner`` ran where this process can see it, and is gone.

    Another machine (or boot), another PID namespace, an unknown owner, or one
    whose /proc entry cannot be read: False (not ours to judge; the lease
    expires)."""
    parts = owner.split("|")
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    boot, namespace, pid, start = parts
    if not boot or boot != _boot_id() or namespace != _namespace():
        return False
    try:
        return _start_time(int(pid)) != start
    except OSError:  # it could not be looked at: not ours to judge either
        return False
