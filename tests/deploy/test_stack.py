"""The compose stack, run natively: scripts/service's web, worker and beat with
DEBUG=false, new keys, PostgreSQL and Redis, driven through HTTP only.

One story, as an operator and a user live it: the first admin from the link the web
service prints, a message with an attachment out through the SMTP server, an IMAP
mailbox configured in the UI, a reply landing on the ticket, polls every minute by
beat's real schedule, the health endpoint and compose healthchecks, the metrics,
then each service stopped by one SIGTERM with all of its processes gone in 10 s.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import pytest

from tests.deploy.web import ProxiedClient
from tests.servers.net import free_port
from tests.servers.postgres import PostgresDatabase
from tests.servers.redis import RedisServer
from tests.servers.stack import ROOT, SERVICE, Service

PUBLIC_HOST = "crm.knowlix.test"
T = TypeVar("T")


def documented_environment() -> dict[str, str]:
    """The first ```dotenv block of docs/deploy.md, for our host and new keys."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```dotenv\n(.*?)```", text, re.S)
    assert block, "docs/deploy.md has no ```dotenv block"
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip().replace("crm.example.com", PUBLIC_HOST)
    return env


def generated_keys(base_env: dict[str, str]) -> dict[str, str]:
    """``manage.py generate_keys`` as a fresh deployment runs it: DEBUG=false, no key."""
    done = subprocess.run(
        [sys.executable, "manage.py", "generate_keys"], cwd=ROOT,
        env={**base_env, "DEBUG": "false"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    keys = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(keys) == {"SECRET_KEY", "KNOWLIX_ENCRYPTION_KEY"}, done.stdout
    return keys


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None and found is not False:
            return found
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


@pytest.fixture
def postgres_db() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase()
    yield database
    database.drop()


@pytest.fixture
def stack_env(tmp_path, postgres_db, smtp_server, test_ca) -> Iterator[dict[str, str]]:
    redis = RedisServer(tmp_path)
    port = free_port()
    base = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHON": sys.executable,
        "KNOWLIX_VAR_DIR": str(tmp_path / "var"),
    }
    env = {
        **base,
        **documented_environment(),
        **generated_keys(base),
        "DATABASE_URL": postgres_db.url,
        "CELERY_BROKER_URL": redis.url,
        "KNOWLIX_SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "KNOWLIX_MAIL_CA_FILE": str(test_ca.ca_path),
        "KNOWLIX_METRICS_TOKEN": secrets.token_urlsafe(24),
        "WEB_HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "3",
        "CELERY_CONCURRENCY": "2",
    }
    env["_redis"] = redis  # type: ignore[assignment]  # for the test to stop it
    yield env
    redis.stop()


def test_compose_stack_end_to_end(tmp_path, stack_env, smtp_server, dovecot_user):
    """Web, worker and beat as compose runs them serve a user end to end, report
    their health, poll every minute, and each stops at one SIGTERM."""
    redis: RedisServer = stack_env.pop("_redis")  # type: ignore[assignment]
    env = stack_env
    services: dict[str, Service] = {}
    try:
        _run_story(tmp_path, env, services, redis, smtp_server, dovecot_user)
    except BaseException:
        for service in services.values():  # shown by pytest with the failure
            print(f"===== {service.name} log (end) =====\n{service.log[-4000:]}")
        raise
    finally:
        for service in services.values():
            service.kill()


def _run_story(tmp_path, env, services, redis, smtp_server, dovecot_user) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    web = services["web"] = Service("web", env, logs)
    link = web.wait_for_log(r"Create the first administrator at (\S+)", 120)[1]
    web.wait_for_log(r"(?s)(Booting worker.*){3}", 60)  # several gunicorn workers
    worker = services["worker"] = Service("worker", env, logs)
    beat = services["beat"] = Service("beat", env, logs)
    worker.wait_for_log(r"ready\.", 90)
    beat.wait_for_log(r"beat: Starting", 60)

    site = ProxiedClient(f"http://127.0.0.1:{env['PORT']}", PUBLIC_HOST)
    health = wait_for(
        "every health check to pass",
        lambda: (r := site.get("/health/?format=json")).status_code == 200 and r,
        90,
    ).json()
    assert len(health) == 5 and set(health.values()) == {"OK"}, health
    for part in ("web", "worker", "beat", "outbox"):
        check = subprocess.run([SERVICE, "health", part], env=env, capture_output=True)
        assert check.returncode == 0, (part, check.stdout, check.stderr)

    # The first admin, from the link the web service printed; then the link is dead.
    password = secrets.token_urlsafe(16)
    admin = {"username": "boss", "email": "boss@knowlix.test"}
    created = site.submit(link, {**admin, "password1": password, "password2": password},
                          having="password1")  # fmt: skip
    assert created.status_code == 200, created.text[:3000]
    assert "You are the administrator" in created.text
    assert site.get(link).status_code == 404

    # Log in as that admin from a new browser.
    user = ProxiedClient(site.upstream, PUBLIC_HOST)
    home = user.submit("/login/", {"username": "boss", "password": password},
                       having="password")  # fmt: skip
    assert home.status_code == 200 and "Log out" in home.text, home.text[:2000]

    # collectstatic's hashed, compressed files, served by WhiteNoise; our 404 page.
    css = re.search(r'href="(/static/css/knowlix\.[0-9a-f]{12}\.css)"', home.text)
    assert css, "the stylesheet is not the manifest's hashed name"
    style = user.get(css[1], headers={"Accept-Encoding": "gzip"})
    assert style.status_code == 200 and style.headers["Content-Type"].startswith(
        "text/css"
    )
    assert "immutable" in style.headers["Cache-Control"]
    missing = user.get("/no/such/page/")
    assert missing.status_code == 404 and "Nothing here" in missing.text

    # A ticket, and a message with an attachment to the customer.
    contact = user.submit("/contacts/new/", {"name": "Dana Customer",
                          "email": "dana@customer.example"}, having="email")  # fmt: skip
    contact_id = re.search(r"/contacts/(\d+)/", contact.url)[1]
    ticket = user.submit("/helpdesk/tickets/new/", {"subject": "Printer on fire",
                         "contact": contact_id}, having="subject")  # fmt: skip
    assert ticket.status_code == 200 and "Printer on fire" in ticket.text
    ticket_path = ticket.url.removeprefix(site.upstream)
    pdf = b"%PDF-1.4 smoke " + secrets.token_bytes(64)
    posted = user.submit(
        ticket_path,
        {"body": "The technician comes at noon.", "recipients": "dana@customer.example"},
        files={"attachments": ("report.pdf", pdf, "application/pdf")},
        action="/post/", where={"kind": "email"},
    )  # fmt: skip
    assert posted.status_code == 200, posted.text[:2000]
    sent = wait_for(
        "the message at the SMTP server",
        lambda: next((m for m in smtp_server.received
                      if "dana@customer.example" in m.rcpt_tos), None),
        30,
    )  # fmt: skip
    out = email.message_from_bytes(sent.raw, policy=email.policy.default)
    files = {p.get_filename(): p.get_content() for p in out.iter_attachments()}
    assert files == {"report.pdf": pdf}

    # An IMAP server for the mailbox, configured and confirmed in the UI.
    user.submit("/settings/", {}, action="developer-mode")
    box = user.submit("/settings/technical/email/incoming/new/", {
        "name": "Support box", "kind": "imap", "host": "127.0.0.1",
        "port": str(dovecot_user.server.imaps_port), "security": "ssl",
        "username": dovecot_user.username, "password": dovecot_user.password,
        "auth_method": "password", "folder": "INBOX", "after_store": "seen",
        "default_action": "knowlix.ticket", "poll_interval_minutes": "1",
    }, having="host")  # fmt: skip
    assert box.status_code == 200, box.text[:2000]
    box_path = box.url.removeprefix(site.upstream)
    confirmed = user.submit(box_path, {}, action="/test/")
    assert "Connection OK" in confirmed.text, confirmed.text[:3000]

    # The customer's reply, delivered to the mailbox, lands on the ticket.
    reply = EmailMessage()
    reply["From"] = "Dana Customer <dana@customer.example>"
    reply["To"] = out["Reply-To"] or out["From"]
    reply["Subject"] = "Re: " + str(out["Subject"])
    reply["Message-ID"] = email.utils.make_msgid(domain="customer.example")
    reply["In-Reply-To"] = reply["References"] = out["Message-ID"]
    marker = f"Noon is fine {secrets.token_hex(4)}"
    reply.set_content(f"{marker}\n\n> The technician comes at noon.\n")
    dovecot_user.append(reply.as_bytes())
    wait_for(
        "the reply on the ticket", lambda: marker in user.get(ticket_path).text, 150
    )

    # Beat's real schedule polls a 1-minute server every minute (±10 s).
    token = {"Authorization": f"Bearer {env['KNOWLIX_METRICS_TOKEN']}"}
    assert site.get("/metrics").status_code == 403  # no token, through the proxy
    series = (
        r'knowlix_incoming_last_success_timestamp_seconds\{server="Support box"\} (\S+)'
    )

    def last_poll() -> float:
        return float(re.search(series, site.get("/metrics", headers=token).text)[1])

    polls = [last_poll()]
    while len(polls) < 3:
        polls.append(
            wait_for(
                "the next poll", lambda: (v := last_poll()) != polls[-1] and v, 100
            )
        )
    gaps = [round(b - a, 1) for a, b in zip(polls, polls[1:], strict=False)]
    print("seconds between polls of the 1-minute server:", gaps)
    assert all(50 <= gap <= 70 for gap in gaps), gaps

    metrics = site.get("/metrics", headers=token).text
    for expected in (
        'knowlix_outgoing_queue_mails{state="sent"} 1.0',
        'knowlix_outgoing_queue_mails{state="queued"} 0.0',
        "knowlix_outgoing_oldest_queued_age_seconds 0.0",
        "knowlix_outgoing_sent_total{server=",
        "knowlix_outgoing_bounces_total 0.0",
        'knowlix_incoming_mail_total{outcome="routed"} 1.0',
        "django_http_requests_total_by_method_total",
    ):
        assert expected in metrics, expected

    for service in services.values():
        assert "Traceback" not in service.log, service.log

    # Each service stops at one SIGTERM; health reports what is missing.
    assert worker.stop() == []
    assert subprocess.run([SERVICE, "health", "worker"], env=env).returncode != 0
    failed = site.get("/health/?format=json")
    assert failed.status_code == 500
    assert [k for k, v in failed.json().items() if v != "OK"] == [
        k for k in failed.json() if k.startswith("Ping")
    ]
    assert beat.stop() == []
    beat_health = site.get("/health/beat/?format=json")
    assert beat_health.status_code == 500 and "Beat stopped" in beat_health.text
    assert subprocess.run([SERVICE, "health", "beat"], env=env).returncode != 0
    assert site.get("/health/web/").status_code == 200
    redis.stop()
    broker = site.get("/health/web/?format=json")
    assert broker.status_code == 500 and "Broker unreachable" in broker.text
    assert web.stop() == []
