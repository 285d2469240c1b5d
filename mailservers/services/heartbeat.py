"""A lease kept alive by a heartbeat thread while its holder works.

The holder (a drain batch, a poll) starts a ``Heartbeat`` with a ``renew`` callable
that pushes its lease's end forward and returns whether the lease is still its own.
The thread calls it every ``every`` seconds with its own database connection, so a
worker blocked in a slow network call (up to the SMTP/IMAP timeout) keeps its lease,
and a worker that died stops renewing: its lease ends within one lease length of
its death, wherever it ran. ``lost`` turns True when the lease was taken away
(recovered as abandoned); the holder checks it and stops touching the rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


class Heartbeat:
    """Call ``renew`` every ``every`` seconds in a thread until the block ends."""

    def __init__(self, renew: Callable[[], bool], *, every: float, name: str) -> None:
        self.renew = renew
        self.every = every
        self.name = name
        self.lost = False
        self._renewed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    held = self.renew()
                except DatabaseError as exc:  # busy or unreachable: try next beat
                    logger.warning("%s: lease not renewed: %s", self.name, exc)
                    continue
                if held:
                    self._renewed = True
                elif self._renewed:
                    # Only a lease this thread saw can be lost: inside a test's
                    # uncommitted transaction, another connection never sees it.
                    self.lost = True
                    logger.warning("%s: lease lost to recovery; stopping", self.name)
                    return
        finally:
            connection.close()  # this thread's own connection
