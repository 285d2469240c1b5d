"""Benchmark: ingest 5,000 messages from Dovecot over IMAP into records.

Run with no arguments: ``.venv/bin/python bench/incoming.py``. It starts its own
Dovecot (tests/servers/dovecot.py) and test database (SQLite in a temporary
directory, or ``test_<name>`` on PostgreSQL when ``DATABASE_URL`` points there),
delivers 5,000 new customer requests into one INBOX, then in the same run:

- bare: a plain ``imaplib`` loop fetching the folder in UID ranges of 500 and
  parsing each message once with ``email.message_from_bytes`` (modern policy);
- ours: ``poll_incoming_server`` (imapclient, bounded batches, routing into a
  Ticket per message, the exactly-once ledger), counting the tickets it created;
- ours with routing replaced by the same single parse as the bare loop, so the
  poller's own cost (``transport_ratio``) is visible beside routing's.

The process's resident memory is sampled during our poll to show it stays flat in
the mailbox size. The last line is
``RESULT incoming ratio=<ours/bare> ours=<msg/s> bare=<msg/s> transport_ratio=...``.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
os.environ["KNOWLIX_VAR_DIR"] = tempfile.mkdtemp(prefix="knowlix-bench-incoming-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.tls import make_test_ca  # noqa: E402

COUNT = int(os.environ.get("BENCH_INCOMING_COUNT", "5000"))
USER, PASSWORD = "bench", "bench-password"
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_request(n: int) -> bytes:
    """A new request from one of 500 customers, ~1.5 KB, text + HTML."""
    sender = n % 500
    text = (f"Hello, this is request number {n}. " * 12).encode()
    return (
        b"From: Customer %d <customer%d@client%d.example>\r\n"
        b"To: support@acme-mailbox.example\r\n"
        b"Subject: Request %d: the printer does not print\r\n"
        b"Message-ID: <req-%d@client%d.example>\r\n"
        b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b%d"\r\n'
        b"\r\n"
        b"--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
        b"--b%d\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%s</p>\r\n"
        b"--b%d--\r\n"
    ) % (sender, sender, sender % 50, n, n, sender % 50, n, n, text, n, text, n)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1024 / 1024


def bare_loop(dovecot: DovecotServer) -> tuple[int, float]:
    """imaplib: fetch the whole folder in UID ranges, parse each message once."""
    start = time.perf_counter()
    conn = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=30)
    conn.login(USER, PASSWORD)
    conn.select("INBOX", readonly=True)
    parsed = 0
    for low in range(1, COUNT + 1, 500):
        typ, data = conn.uid("FETCH", f"{low}:{low + 499}", "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                message = email.message_from_bytes(item[1], policy=email.policy.default)
                parsed += bool(message["Message-ID"])
    conn.logout()
    return parsed, time.perf_counter() - start


def parse_only(
    *, raws: list[bytes], server: object, prepared: object = None
) -> list[str]:
    """Routing replaced by the bare loop's work (one parse): isolates the poller."""
    for raw in raws:
        email.message_from_bytes(raw, policy=email.policy.default)
    return ["routed"] * len(raws)


def no_prepare(*, raws: list[bytes], server: object, parsed: object = None) -> None:
    return None


def no_parse(*, messages: list) -> dict:  # type: ignore[type-arg]
    return {}


def our_poll(
    dovecot: DovecotServer,
    *,
    name: str,
    route=None,  # noqa: ANN001
) -> tuple[int, float, list[tuple[int, float]]]:
    from knowlix.models import Ticket
    from mailservers.models import IncomingServer
    from mailservers.services import incoming

    server = IncomingServer.objects.create(
        name=name, host=dovecot.host, port=dovecot.imap_port, security="none",
        username=USER, password=PASSWORD, state=IncomingServer.State.CONFIRMED,
    )  # fmt: skip
    routed = [0]
    original = (
        incoming.route_messages,
        incoming.prepare_messages,
        incoming.parse_messages,
    )
    route = route or original[0]

    def counting_route(
        *, raws: list[bytes], server: IncomingServer, prepared: object = None
    ) -> list[str]:
        outcomes = route(raws=raws, server=server, prepared=prepared)
        routed[0] += len(raws)
        return outcomes

    incoming.route_messages = counting_route
    if route is parse_only:  # no parse but the one parse_only does
        incoming.prepare_messages, incoming.parse_messages = no_prepare, no_parse
    samples: list[tuple[int, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append((routed[0], rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = incoming.poll_incoming_server(server=server)
    finally:
        (
            incoming.route_messages,
            incoming.prepare_messages,
            incoming.parse_messages,
        ) = original
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    assert result.stored == COUNT, result
    return Ticket.objects.count(), elapsed, samples


def rss_at(samples: list[tuple[int, float]], fraction: float) -> float:
    target = COUNT * fraction
    return min(samples, key=lambda s: abs(s[0] - target))[1] if samples else rss_mb()


def main() -> None:
    from feed.services import ensure_default_data
    from knowlix.runtime import freeze_startup_heap
    from knowlix.setup import ensure_default_groups

    settings.DEBUG = False  # no query log growing with the mailbox
    # As the Celery worker and fetch_mail do once started (knowlix.runtime); the
    # bare loop runs in the same process after it.
    freeze_startup_heap()
    work = Path(os.environ["KNOWLIX_VAR_DIR"])
    work.chmod(0o755)  # Dovecot's auth and mail processes run as other users
    dovecot = DovecotServer(make_test_ca(work / "ca"), directory=work / "dovecot")
    dovecot.start()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        ensure_default_data()
        ensure_default_groups()
        dovecot.add_user(USER, PASSWORD)
        start = time.perf_counter()
        dovecot.append_many(USER, (make_request(n) for n in range(COUNT)))
        print(f"delivered {COUNT} messages in {time.perf_counter() - start:.1f} s")
        parsed, bare_s = bare_loop(dovecot)
        assert parsed == COUNT, parsed
        bare_rate = COUNT / bare_s
        print(f"bare imaplib fetch+parse: {bare_rate:.0f} msg/s ({bare_s:.2f} s)")
        _, transport_s, _ = our_poll(dovecot, name="transport", route=parse_only)
        transport_rate = COUNT / transport_s
        print(
            f"ours, routing replaced by one parse: {transport_rate:.0f} msg/s"
            f" ({transport_s:.2f} s)"
        )
        tickets, ours_s, samples = our_poll(dovecot, name="records")
        ours_rate = COUNT / ours_s
        print(
            f"ours (poll -> routing -> tickets): {ours_rate:.0f} msg/s ({ours_s:.2f} s)"
        )
        print(f"tickets created: {tickets}")
        rss_20, rss_100 = rss_at(samples, 0.2), rss_at(samples, 1.0)
        print(f"RSS during the poll: {rss_20:.0f} MB at 20%, {rss_100:.0f} MB at 100%")
        print(
            f"RESULT incoming ratio={ours_rate / bare_rate:.2f} ours={ours_rate:.0f}"
            f" bare={bare_rate:.0f} transport_ratio={transport_rate / bare_rate:.2f}"
            f" tickets={tickets} rss_mb_20pct={rss_20:.0f}"
            f" rss_mb_100pct={rss_100:.0f}"
        )
    finally:
        connection.creation.destroy_test_db(
            connection.settings_dict["NAME"], verbosity=0
        )
        dovecot.close()


if __name__ == "__main__":
    main()
