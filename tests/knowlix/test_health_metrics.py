"""The health endpoints (each component) and the metrics endpoint (its guard and
the Knowlix series)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from knowlix.beat import BEAT, HeartbeatScheduler, record_heartbeat, record_stop
from knowlix.celery import app
from knowlix.models import Heartbeat
from mailservers.models import OutgoingMail, OutgoingRecipient
from mailservers.services.outbox_health import mark_down, mark_up
from mailservers.services.outgoing import (
    MailRecipient,
    mark_recipient_bounced,
    queue_mail,
)
from routing.models import InboundMail
from tests.servers.net import free_port
from tests.servers.stack import SERVICE

# The checks run in threads of their own (their own database connections): they
# see committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)


def value(text: str, series: str) -> float:
    """The value of one sample line of a Prometheus text page."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert found, f"{series} missing from:\n{text}"
    return float(found[1])


def health(client, part: str = "") -> tuple[int, dict[str, str]]:
    response = client.get(f"/health/{part}", {"format": "json"})
    return response.status_code, response.json()


def test_beat_health_follows_the_heartbeat(client):
    """Never ran, fresh, stopped, silent: only fresh is healthy."""
    assert health(client, "beat/") == (
        500,
        {"Beat()": "Unavailable: Beat has never run"},
    )
    record_heartbeat(name=BEAT)
    assert health(client, "beat/") == (200, {"Beat()": "OK"})
    record_stop(name=BEAT)
    status, body = health(client, "beat/")
    assert status == 500 and body["Beat()"].startswith("Unavailable: Beat stopped")
    record_heartbeat(name=BEAT)
    Heartbeat.objects.update(beat_at=timezone.now() - dt.timedelta(minutes=5))
    status, body = health(client, "beat/")
    assert status == 500 and body["Beat()"].startswith(
        "Unavailable: Beat silent for 300"
    )


def test_beat_scheduler_ticks_write_the_heartbeat(tmp_path):
    """Celery beat's real scheduler class stamps the row at each tick, and a
    clean close marks it stopped."""
    scheduler = HeartbeatScheduler(app, schedule_filename=str(tmp_path / "sched"))
    try:
        scheduler.tick()
        beat = Heartbeat.objects.get(name=BEAT)
        assert beat.stopped_at is None
        assert timezone.now() - beat.beat_at < dt.timedelta(seconds=5)
    finally:
        scheduler.close()
    assert Heartbeat.objects.get(name=BEAT).stopped_at is not None


def _queue(**fields) -> OutgoingMail:  # noqa: ANN003
    mail = queue_mail(
        from_address="alice@catchall.test",
        recipients=[MailRecipient("dana@customer.test")],
        subject="Hello",
        body_text="Hi",
        send_now=False,
    )
    OutgoingMail.objects.filter(pk=mail.pk).update(**fields)
    return mail


def test_outbox_health_reports_a_stalled_queue(client, settings):
    """Mail due for longer than the limit, or stuck sending, fails the check."""
    settings.KNOWLIX_HEALTH_OUTBOX_STALL = 600
    _queue()  # due now: a worker has ten minutes
    assert health(client, "outbox/")[0] == 200
    _queue(next_attempt_at=timezone.now() - dt.timedelta(minutes=11))
    status, body = health(client, "outbox/")
    assert status == 500 and "Outgoing queue stalled: 1 mail" in body["Outbox()"]
    OutgoingMail.objects.update(state=OutgoingMail.State.SENT)
    assert health(client, "outbox/")[0] == 200
    _queue(state="sending", claimed_at=timezone.now() - dt.timedelta(hours=1))
    assert health(client, "outbox/")[0] == 500


def test_outbox_health_names_the_server_that_is_down(client, settings):
    """During an outage the overdue mail is the server's, not a missing worker's:
    the report says which server, since when, why, and when it is probed next."""
    settings.KNOWLIX_HEALTH_OUTBOX_STALL = 600
    long_ago = timezone.now() - dt.timedelta(hours=2)
    _queue(next_attempt_at=long_ago)
    _queue(next_attempt_at=long_ago)
    status, body = health(client, "outbox/")
    assert status == 500 and "is a worker draining?" in body["Outbox()"]
    mark_down(None, "Connection refused")
    status, body = health(client, "outbox/")
    report = body["Outbox()"]
    assert status == 500
    assert "2 mail waiting for Default server, down since" in report
    assert "(Connection refused), next probe" in report
    assert "worker" not in report
    mark_up(None)
    status, body = health(client, "outbox/")
    assert (
        "2 mail overdue" in body["Outbox()"] and "waiting for" not in body["Outbox()"]
    )


def test_health_is_public_and_names_every_component(client):
    """No login needed (load balancers, compose); the full report lists the
    database, the broker, the workers, beat and the outbox."""
    status, body = health(client)
    names = " ".join(body)
    for part in ("Database", "Broker", "Ping", "Beat", "Outbox"):
        assert part in names
    assert status == 500  # no worker answers and beat never ran here


def test_checks_that_wait_for_workers_are_not_for_strangers(client, settings):
    """/health/ and /health/worker/ wait seconds for the workers' answers: from the
    internet (through the proxy) anyone could tie up every gunicorn worker with a
    few requests, so they want the metrics token there; the cheap ones stay public."""
    settings.KNOWLIX_METRICS_TOKEN = "s3cret-token"
    outside = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    for path in ("/health/", "/health/worker/"):
        assert client.get(path, **outside).status_code == 403
        with_token = client.get(
            path, HTTP_AUTHORIZATION="Bearer s3cret-token", **outside
        )
        assert with_token.status_code == 500  # it ran: no worker answers here
    assert client.get("/health/worker/").status_code == 500  # the host itself
    assert client.get("/health/web/", **outside).status_code == 200


def test_metrics_refuse_strangers(client, settings):
    """Without a token: loopback only, never through a proxy; with one: the token."""
    settings.KNOWLIX_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    via_proxy = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert via_proxy.status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.KNOWLIX_METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 403
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"},
                       REMOTE_ADDR="203.0.113.9")  # fmt: skip
    assert right.status_code == 200


def test_metrics_expose_the_knowlix_series(client, make_incoming_server, dovecot_user):
    """Queue depth by state, oldest queued age, sends/failures per server, bounces,
    last successful poll per server, routed mail by outcome."""
    old = _queue(created_at=timezone.now() - dt.timedelta(minutes=3))
    sent = _queue(state="sent", server_label="Main relay")
    _queue(state="failed", server_label="Main relay")
    mark_recipient_bounced(
        message_id=sent.message_id, address="dana@customer.test", reason="550 no user"
    )
    polled_at = timezone.now().replace(microsecond=0)
    make_incoming_server(dovecot_user, name="Support box", last_success_at=polled_at)
    InboundMail.objects.create(raw=b"x", sha256="a" * 64, outcome="routed")
    InboundMail.objects.create(raw=b"y", sha256="b" * 64, outcome="quarantined")
    text = client.get("/metrics").text
    assert 'knowlix_outgoing_queue_mails{state="queued"} 1.0' in text
    assert 'knowlix_outgoing_queue_mails{state="sent"} 1.0' in text
    assert 180 <= value(text, "knowlix_outgoing_oldest_queued_age_seconds") < 240, old
    assert 'knowlix_outgoing_sent_total{server="Main relay"} 1.0' in text
    assert 'knowlix_outgoing_failed_total{server="Main relay"} 1.0' in text
    assert "knowlix_outgoing_bounces_total 1.0" in text
    assert OutgoingRecipient.objects.filter(state="bounced").count() == 1
    last_poll = 'knowlix_incoming_last_success_timestamp_seconds{server="Support box"}'
    assert value(text, last_poll) == polled_at.timestamp()
    assert 'knowlix_incoming_mail_total{outcome="routed"} 1.0' in text
    assert 'knowlix_incoming_mail_total{outcome="quarantined"} 1.0' in text


def test_health_page_renders_for_people_and_prometheus(client):
    """The HTML page and the OpenMetrics form both render (beat's check here)."""
    record_heartbeat(name=BEAT)
    page = client.get("/health/beat/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Beat" in page.text
    metrics = client.get("/health/beat/", {"format": "openmetrics"})
    assert 'django_health_check_status{check="Beat"} 1' in metrics.text


def test_web_health_fails_without_its_database(tmp_path):
    """`scripts/service health all`, the database stopped: the Database check fails
    with a reason, the command exits non-zero (what compose reads)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "KNOWLIX_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gone",
    }
    done = subprocess.run([SERVICE, "health", "all"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    line = next(
        line for line in done.stdout.splitlines() if line.startswith("Database")
    )
    assert "OK" not in line and "unavailable" in line.lower(), done.stdout
