"""Judging a poll lease's owner (``lease_owner``): only a process known to be gone
gives its lease up; one that cannot be looked at keeps it until it expires."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mailservers.services import lease_owner

ROOT = Path(__file__).resolve().parents[2]

OUT_OF_FILES = """
import resource, sys
from mailservers.services import lease_owner

_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
files = []
try:
    while True:
        files.append(open("/dev/null"))
except OSError:
    pass
print(lease_owner.is_dead(sys.argv[1]))
"""


def test_an_owner_that_cannot_be_looked_at_is_not_dead():
    """A process out of file descriptors cannot read /proc: the owner of the lease
    (this test's process, alive) is not taken for dead."""
    owner = lease_owner.current_owner()
    assert owner and not lease_owner.is_dead(owner)
    judged = subprocess.run(
        [sys.executable, "-c", OUT_OF_FILES, owner],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert judged.stdout.strip() == "False"
