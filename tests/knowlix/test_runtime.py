"""Long-running processes freeze their start-up heap once (knowlix.runtime)."""

from __future__ import annotations

import gc

import pytest
from celery import signals

from knowlix import runtime


@pytest.fixture
def unfrozen(monkeypatch):
    gc.unfreeze()
    monkeypatch.setattr(runtime, "_frozen", False)
    yield
    gc.unfreeze()


@pytest.mark.parametrize("signal", [signals.worker_ready, signals.worker_process_init])
def test_celery_worker_start_freezes_the_heap(unfrozen, signal):
    """A Celery worker (main process or prefork child) freezes what start-up left."""
    assert gc.get_freeze_count() == 0
    signal.send(sender=None)
    assert gc.get_freeze_count() > 1000


def test_freezing_happens_once(unfrozen):
    """A second call leaves later objects to the collector."""
    runtime.freeze_startup_heap()
    frozen = gc.get_freeze_count()
    later = [[] for _ in range(1000)]
    runtime.freeze_startup_heap()
    # Frozen objects may still be freed (by reference counting), never added.
    assert gc.get_freeze_count() <= frozen
    assert len(later) == 1000
