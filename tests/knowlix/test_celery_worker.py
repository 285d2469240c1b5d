"""A real Celery worker process runs a task sent over a real Redis."""

import time

from knowlix import params
from knowlix.models import SystemParameter
from knowlix.tasks import record_heartbeat


def test_worker_runs_a_task_over_redis(celery_worker):
    """The worker writes the token the test sent; nothing else could have."""
    token = f"beat-{time.time_ns()}"
    record_heartbeat.delay(token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = SystemParameter.objects.filter(key="celery.heartbeat").first()
        if row is not None and row.value == token:
            break
        time.sleep(0.2)
    params.clear_cache()
    assert params.get_param("celery.heartbeat") == token
    assert celery_worker.broker_url.startswith("redis://")
