"""No backscatter: refusals only to senders who may be real, a few per hour."""

from __future__ import annotations

import pytest

from knowlix import params
from mailservers.services.outgoing import process_outbox
from routing.matching import TRUSTED_AUTHSERV_IDS
from routing.models import InboundMail

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


def stray(n: int, *, sender: str = "victim@innocent.example", extra: str = "") -> bytes:
    return (
        f"{extra}From: Someone <{sender}>\r\nTo: nobody-{n}@example.com\r\n"
        f"Subject: Buy now {n}\r\nMessage-ID: <stray-{n}@spam.example>\r\n"
        "Content-Type: text/plain\r\n\r\nSpam.\r\n"
    ).encode()


def test_thirty_forged_mails_get_three_refusals(catchall, route, smtp):
    """30 mails to unknown addresses with one forged From: 3 answers, 27 recorded."""
    results = [route(stray(n)) for n in range(30)]
    assert {r.outcome for r in results} == {"refused"}
    process_outbox()
    assert len(smtp.received) == 3
    assert {tuple(r.rcpt_tos) for r in smtp.received} == {("victim@innocent.example",)}
    quiet = InboundMail.objects.filter(replied_at__isnull=True)
    assert quiet.count() == 27
    assert all(
        "3 automatic answers to this address this hour" in m.reason for m in quiet
    )
    assert InboundMail.objects.filter(outcome="refused").count() == 30


def test_limit_is_a_system_parameter(catchall, route, smtp):
    """mail.gateway.refusals_per_hour sets how many answers an address gets."""
    params.set_param(params.REFUSALS_PER_HOUR, "1")
    for n in range(3):
        route(stray(n))
    process_outbox()
    assert len(smtp.received) == 1


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("Return-Path: <>\r\n", "null Return-Path"),
        ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
        ("List-Id: <news.spam.example>\r\n", "List-Id"),
        ("List-Unsubscribe: <mailto:u@spam.example>\r\n", "List-Unsubscribe"),
        ("Precedence: bulk\r\n", "Precedence: bulk"),
        (
            "Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=innocent.example\r\n",
            "spf=fail",
        ),
        (
            "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=innocent.example; dkim=fail header.d=innocent.example\r\n",
            "dkim=fail",
        ),
        (
            "Authentication-Results: mx.example.com; dmarc=fail header.from=innocent.example\r\n",
            "dmarc=fail",
        ),
    ],
)
def test_machines_lists_and_failed_senders_are_never_answered(
    extra, why, catchall, route, smtp
):
    """Null Return-Path, automatic, list, bulk or failed authentication: no answer,
    and the reason is recorded on the refused mail."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    result = route(stray(1, extra=extra))
    assert result.outcome == "refused"
    assert "Not answered" in result.reason and why in result.reason
    process_outbox()
    assert smtp.received == []
    assert InboundMail.objects.get().replied_at is None


def test_return_path_gets_the_answer_not_from(catchall, route, smtp):
    """The answer goes to the envelope sender (Return-Path) when there is one."""
    route(stray(1, extra="Return-Path: <bounces@innocent.example>\r\n"))
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["bounces@innocent.example"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_routing_never_exceeds_the_limit(catchall, route):
    """Four workers refusing mail of one sender at once: one answer with a limit of 1."""
    import threading

    from django.db import connection

    from mailservers.models import OutgoingMail

    params.set_param(params.REFUSALS_PER_HOUR, "1")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            route(stray(100 + n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert InboundMail.objects.filter(outcome="refused").count() == 4
    assert OutgoingMail.objects.count() == 1


def test_address_variants_share_one_limit(catchall, route, smtp):
    """Case, +tags and a trailing dot reach one mailbox: they share its limit."""
    senders = [
        "victim@innocent.example",
        "VICTIM@Innocent.Example",
        "victim+1@innocent.example",
        "Victim+spam-2@innocent.example",
        "victim+3@innocent.example.",
        "victim+@innocent.example",
    ]
    for n, sender in enumerate(senders):
        route(stray(n, sender=sender))
    process_outbox()
    assert len(smtp.received) == 3
    other = route(stray(10, sender="victim2@innocent.example"))
    assert other.outcome == "refused"
    process_outbox()
    assert len(smtp.received) == 4
