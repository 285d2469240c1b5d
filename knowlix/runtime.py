"""Process tuning for the long-running processes (Celery workers, pollers).

After start-up a worker holds hundreds of thousands of long-lived objects (Django,
the models, libraries). Python's cyclic garbage collector walks all of them at
every full collection, which under the allocation rate of mail ingestion (model
instances, parsed messages) costs about a fifth of the time (bench/incoming.py:
1.80 -> 1.43 ms per message). :func:`freeze_startup_heap` moves them, once, into
the collector's permanent generation (``gc.freeze``): they are never walked again,
and objects created later are collected as usual.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_heap() -> None:
    """Collect, then freeze what is alive now (once per process; safe to repeat).

    Call when start-up is over (settings, apps, task modules imported), never per
    request or per task: what is frozen is never collected.
    """
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
