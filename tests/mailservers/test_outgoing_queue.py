"""queue_mail and the drain against the real loopback SMTP servers."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from feed.delivery import thread_headers
from feed.models import Message
from knowlix import params
from mailservers.errors import DeliveryError, MailTooLargeError
from mailservers.mime import MailPart
from mailservers.models import (
    OutboxClaim,
    OutgoingMail,
    OutgoingRecipient,
    OutgoingServer,
    OutgoingServerHealth,
)
from mailservers.services import outbox, outbox_results
from mailservers.services.outgoing import (
    MailRecipient,
    cancel_mail,
    mark_recipient_bounced,
    queue_mail,
    retry_mail,
)
from tests.mailservers.queue_helpers import queue_numbered
from tests.servers.smtp_fixtures import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.django_db
State, RState = OutgoingMail.State, OutgoingRecipient.State


@pytest.fixture
def outbox_server(settings, smtp_server):  # noqa: ANN001, ANN201
    """The default server (KNOWLIX_SMTP_URL) is the loopback server, with AUTH."""
    user, password = quote(SMTP_USER), quote(SMTP_PASSWORD)
    settings.KNOWLIX_SMTP_URL = f"smtp://{user}:{password}@127.0.0.1:{smtp_server.port}"
    settings.KNOWLIX_SMTP_TIMEOUT = 5
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return smtp_server


def queue(**overrides) -> OutgoingMail:  # noqa: ANN003
    values = {
        "from_address": "alice@catchall.test",
        "from_name": "Alice Agent",
        "recipients": [MailRecipient("dana@customer.test", "Dana")],
        "subject": "Your ticket",
        "body_html": "<p>Hello <b>Dana</b></p>",
        "send_now": False,
    }
    values.update(overrides)
    return queue_mail(**values)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def custom_server(smtp, **fields) -> OutgoingServer:  # noqa: ANN001, ANN003
    params.set_param(params.USE_CUSTOM_SERVERS, "true")
    values = {
        "name": "Company relay",
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": smtp.security,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
    }
    values.update(fields)
    return OutgoingServer.objects.create(**values)


def test_default_server_delivers_the_stored_bytes(outbox_server):  # noqa: ANN001
    """The default server sends the built bytes once; mail and recipient are sent."""
    mail = queue()
    report = outbox.process_outbox()
    [received] = outbox_server.received
    assert report.sent == 1
    assert received.raw.replace(b"\r\n", b"\n") == bytes(mail.raw).replace(
        b"\r\n", b"\n"
    )
    assert received.rcpt_tos == ["dana@customer.test"]
    assert received.login == SMTP_USER
    mail.refresh_from_db()
    assert mail.state == State.SENT and mail.sent_at and mail.attempts == 1
    assert mail.recipients.get().state == RState.SENT


def test_foreign_from_is_rewritten_with_reply_to(outbox_server):  # noqa: ANN001
    """A From no server sends for leaves as the default address, sender in Reply-To."""
    mail = queue(from_address="alice@gmail.com")
    outbox.process_outbox()
    msg = parse(outbox_server.received[0].raw)
    assert msg["From"].addresses[0].addr_spec == "notifications@catchall.test"
    assert msg["From"].addresses[0].display_name == "Alice Agent"
    assert msg["Reply-To"].addresses[0].addr_spec == "alice@gmail.com"
    assert outbox_server.received[0].mail_from.endswith("@catchall.test")
    mail.refresh_from_db()
    assert mail.original_from == "alice@gmail.com"
    assert "rewritten" in mail.selection_reason


def test_record_mail_threads_and_replies_to_the_record(outbox_server, ticket):  # noqa: ANN001
    """Mail about a record replies to reply+token@catch-all and carries the thread
    headers the feed computed (root, then latest message of the record's feed)."""
    from django.contrib.contenttypes.models import ContentType

    ct = ContentType.objects.get_for_model(ticket)
    for n in (1, 2):
        Message.objects.create(
            content_type=ct,
            object_id=ticket.pk,
            kind=Message.Kind.EMAIL,
            message_id=f"<m{n}@catchall.test>",
            created_at=timezone.now() + timedelta(seconds=n),
        )
    in_reply_to, references = thread_headers(ticket)
    mail = queue(
        record=ticket,
        auto_submitted=True,
        in_reply_to=in_reply_to,
        references=references,
    )
    outbox.process_outbox()
    msg = parse(outbox_server.received[0].raw)
    assert msg["Reply-To"] == f"reply+{ticket.reply_token}@catchall.test"
    root = Message.objects.filter(content_type=ct, object_id=ticket.pk).earliest(
        "created_at", "id"
    )  # the record's first feed message ("created"), then the latest one
    assert msg["In-Reply-To"] == "<m2@catchall.test>"
    assert msg["References"].split() == [root.message_id, "<m2@catchall.test>"]
    assert msg["Message-ID"] == mail.message_id
    assert msg["Auto-Submitted"] == "auto-generated"
    assert mail.content_type == ct and mail.object_id == ticket.pk


def test_bcc_only_in_the_envelope(outbox_server):  # noqa: ANN001
    """Bcc recipients receive the mail but appear in no header."""
    queue(
        recipients=[
            MailRecipient("to@x.test"),
            MailRecipient("cc@x.test", kind="cc"),
            MailRecipient("hidden@x.test", kind="bcc"),
        ]
    )
    outbox.process_outbox()
    received = outbox_server.received
    assert sorted(r.rcpt_tos[0] for r in received) == [
        "cc@x.test",
        "hidden@x.test",
        "to@x.test",
    ]
    assert all(len(r.rcpt_tos) == 1 for r in received)  # one VERP sender each
    assert len({r.mail_from for r in received}) == 3
    assert all(b"hidden@x.test" not in r.raw for r in received)


def test_custom_server_chosen_by_from_filter(starttls_server, smtp_ca_settings):  # noqa: ANN001
    """A custom STARTTLS server whose filter lists the domain sends, with AUTH."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    relay = custom_server(starttls_server, from_filter="company.test")
    mail = queue(from_address="bob@company.test")
    outbox.process_outbox()
    [received] = starttls_server.received
    assert received.tls and received.login == SMTP_USER
    assert received.mail_from.startswith("bounce+")  # VERP, at the catch-all
    assert received.mail_from.endswith("@catchall.test")
    mail.refresh_from_db()
    assert mail.server == relay and mail.state == State.SENT
    relay.refresh_from_db()
    assert relay.last_success_at is not None


def test_rejected_recipient_fails_alone(outbox_server):  # noqa: ANN001
    """A 550 for one recipient fails it only; the other is sent; the mail is sent."""
    outbox_server.fail_rcpt("gone@x.test", 550, "5.1.1 mailbox unavailable")
    mail = queue(recipients=[MailRecipient("ok@x.test"), MailRecipient("gone@x.test")])
    outbox.process_outbox()
    states = dict(mail.recipients.values_list("address", "state"))
    assert states == {"ok@x.test": RState.SENT, "gone@x.test": RState.FAILED}
    gone = mail.recipients.get(address="gone@x.test")
    assert gone.smtp_code == 550 and "mailbox unavailable" in gone.last_error
    mail.refresh_from_db()
    assert mail.state == State.SENT


def test_rejected_send_keeps_server_reason(outbox_server):  # noqa: ANN001
    """A 5xx reply to DATA marks the mail failed and keeps the server's reason."""
    outbox_server.reject_next(554, "5.7.1 message refused as spam")
    mail = queue()
    outbox.process_outbox()
    mail.refresh_from_db()
    assert mail.state == State.FAILED
    assert "refused as spam" in mail.last_error
    assert outbox_server.received == []


@pytest.mark.parametrize("fault", ["451", "421", "drop"])
def test_temporary_failure_defers_then_sends_once(outbox_server, fault):  # noqa: ANN001
    """451, 421 and a connection dropped at MAIL FROM defer the mail; the batch goes on."""
    if fault == "drop":
        outbox_server.drop_next(stage="mail")
    else:
        outbox_server.reject_next(int(fault), "4.3.0 try again later")
    first, _ = queue(), queue(recipients=[MailRecipient("other@x.test")])
    report = outbox.process_outbox()
    first.refresh_from_db()
    assert first.state == State.DEFERRED and first.attempts == 1
    assert first.next_attempt_at > timezone.now()
    assert first.recipients.get().state == RState.DEFERRED
    assert report.sent == 1 and report.deferred == 1
    assert [r.rcpt_tos for r in outbox_server.received] == [["other@x.test"]]
    OutgoingMail.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    outbox.process_outbox()
    first.refresh_from_db()
    assert first.state == State.SENT and first.attempts == 2
    assert len(outbox_server.received) == 2


def test_deferred_mail_expires_only_after_the_queue_lifetime(outbox_server):  # noqa: ANN001
    """Attempts never end a mail's wait; the queue lifetime (5 days) does, with why."""
    outbox_server.fail_rcpt("slow@x.test", 451, "4.2.0 greylisted")
    young = queue(recipients=[MailRecipient("slow@x.test")], subject="young")
    old = queue(recipients=[MailRecipient("slow@x.test")], subject="old")
    OutgoingMail.objects.filter(pk=young.pk).update(attempts=40)
    OutgoingMail.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=5) + timedelta(seconds=10)
    )
    outbox.process_outbox()
    young.refresh_from_db()
    old.refresh_from_db()
    assert young.state == State.DEFERRED and young.attempts == 41
    assert old.state == State.FAILED
    assert "5 days" in old.last_error and "greylisted" in old.last_error
    assert old.recipients.get().state == RState.FAILED


def test_waiting_mail_expires_by_the_sweep(outbox_server):  # noqa: ANN001
    """Mail that waited past the lifetime (its server down) fails with its last
    error; the lifetime is a system parameter."""
    params.set_param(params.QUEUE_LIFETIME_DAYS, "2")
    mail = queue()
    OutgoingMail.objects.filter(pk=mail.pk).update(
        state=State.DEFERRED,
        last_error="server down",
        created_at=timezone.now() - timedelta(days=2, seconds=1),
    )
    assert outbox.sweep_queue() == (0, 1)
    mail.refresh_from_db()
    assert mail.state == State.FAILED and "2 days" in mail.last_error
    assert "server down" in mail.last_error
    assert outbox_server.received == []


def test_quota_pauses_the_server_and_mail_waits(outbox_server):  # noqa: ANN001
    """A sending quota pauses the server; its mail waits untried (no attempt used)."""
    relay = custom_server(outbox_server)
    outbox_server.quota_exceeded_next()
    mails = [queue(from_address="a@elsewhere.test") for _ in range(3)]
    report = outbox.process_outbox()
    relay.refresh_from_db()
    assert relay.is_paused and "quota" in relay.last_error
    assert report.released == 3
    for mail in mails:
        mail.refresh_from_db()
        assert mail.server == relay
        assert mail.state == State.DEFERRED and mail.attempts == 0
        assert mail.next_attempt_at >= relay.paused_until
    assert outbox.process_outbox().sent == 0  # paused: nothing is claimed
    assert outbox_server.received == []


def test_bad_credentials_flag_the_server(outbox_server):  # noqa: ANN001
    """Refused credentials flag the server needs-attention and down; its mail
    waits for the probe without using an attempt."""
    relay = custom_server(outbox_server, password="wrong")
    mail = queue(from_address="a@elsewhere.test")
    outbox.process_outbox()
    relay.refresh_from_db()
    assert relay.needs_attention and relay.health.is_down
    assert "refused the credentials" in relay.last_error
    mail.refresh_from_db()
    assert mail.state == State.DEFERRED and mail.attempts == 0
    assert mail.next_attempt_at == relay.health.probe_at


def test_rate_limit_makes_mail_wait_not_fail(outbox_server):  # noqa: ANN001
    """Beyond the per-minute limit, mail stays queued; nothing fails."""
    custom_server(outbox_server, limit_per_minute=2)
    mails = [queue(from_address="a@elsewhere.test") for _ in range(5)]
    outbox.process_outbox()
    states = sorted(OutgoingMail.objects.values_list("state", flat=True))
    assert states == [State.QUEUED] * 3 + [State.SENT] * 2
    assert len(outbox_server.received) == 2
    assert all(m.attempts == 0 for m in OutgoingMail.objects.filter(state=State.QUEUED))
    assert len(mails) == 5


def test_one_connection_per_batch(outbox_server):  # noqa: ANN001
    """Twenty mails to one server share one connection and one login."""
    for n in range(20):
        queue(recipients=[MailRecipient(f"r{n}@x.test")])
    outbox.process_outbox()
    assert len(outbox_server.received) == 20
    assert outbox_server.connections == 1 and outbox_server.logins == [SMTP_USER]


def test_too_large_mail_is_refused_before_queueing(outbox_server, settings):  # noqa: ANN001
    """A mail above KNOWLIX_MAIL_MAX_BYTES is refused with sizes; no row exists."""
    settings.KNOWLIX_MAIL_MAX_BYTES = 100_000
    big = MailPart("scan.pdf", b"%" * 90_000, "application/pdf")
    with pytest.raises(MailTooLargeError, match="limit is 0.1 MB"):
        queue(attachments=[big])
    assert not OutgoingMail.objects.exists()
    queue(attachments=[MailPart("small.pdf", b"%" * 1000, "application/pdf")])
    assert OutgoingMail.objects.count() == 1


def test_invalid_recipient_refused_before_queueing(outbox_server):  # noqa: ANN001
    """An address that could inject headers is refused; nothing is queued."""
    with pytest.raises(DeliveryError):
        queue(recipients=[MailRecipient("a@x.test\r\nBcc: victim@x.test")])
    assert not OutgoingMail.objects.exists()


def test_cancel_then_retry(outbox_server):  # noqa: ANN001
    """A cancelled mail is not sent; Retry queues it again and it is sent."""
    mail = queue()
    assert cancel_mail(mail_id=mail.pk)
    outbox.process_outbox()
    assert outbox_server.received == []
    mail.refresh_from_db()
    assert mail.state == State.CANCELLED
    assert mail.recipients.get().state == RState.CANCELLED
    assert retry_mail(mail_id=mail.pk)
    outbox.process_outbox()
    assert len(outbox_server.received) == 1


def test_abandoned_claim_fails_only_its_mail_at_stage_data(outbox_server):  # noqa: ANN001
    """After a crash, the mails answered before are sent, only the one whose content
    may have left fails visibly (and warns on Retry), and the untried rest is
    queued again without using an attempt."""
    for n in range(25):
        queue(subject=f"Mail {n}")
    claim = outbox._claim(server_id=None, limit=25)  # a worker claims, then dies
    in_flight = claim.ids[3]  # three mails had their 250; its content was going
    OutboxClaim.objects.filter(token=claim.token).update(data_position=3)
    assert outbox.recover_stuck_mail() == 0  # the claim's lease still runs
    # Move the database's clock past the lease: the claim is abandoned.
    OutboxClaim.objects.filter(token=claim.token).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert outbox.process_outbox().sent == 0
    assert outbox.recover_stuck_mail() == 25
    assert not OutgoingMail.objects.filter(state=State.SENDING).exists()
    assert not OutboxClaim.objects.exists()
    sent = OutgoingMail.objects.filter(pk__in=claim.ids[:3])
    assert set(sent.values_list("state", flat=True)) == {State.SENT}
    assert {r.state for m in sent for r in m.recipients.all()} == {RState.SENT}
    failed = OutgoingMail.objects.get(state=State.FAILED)
    assert failed.pk == in_flight and failed.uncertain
    assert failed.smtp_stage == OutgoingMail.Stage.DATA
    assert "cannot tell whether it left" in failed.last_error
    assert failed.recipients.get().state == RState.FAILED
    rest = OutgoingMail.objects.filter(pk__in=claim.ids[4:])
    assert set(rest.values_list("state", "attempts")) == {(State.QUEUED, 0)}
    outbox.process_outbox()
    assert len(outbox_server.received) == 21
    assert retry_mail(mail_id=in_flight)
    outbox.process_outbox()
    assert len(outbox_server.received) == 22
    failed.refresh_from_db()
    assert failed.state == State.SENT and not failed.uncertain


def test_claim_taken_back_mid_batch_sends_no_more_content(
    outbox_server,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When recovery takes a running batch's claim back, the mail whose stage write
    finds the claim gone leaves no content (the connection is dropped after 354),
    and the mails recovery requeued are sent once by the next batch."""
    mails = [queue(subject=f"Mail {n}") for n in range(6)]
    reach_data = outbox_results.SendProgress.reach_data
    recovered: list[int] = []

    def recovered_before_mail_3(progress, position):  # noqa: ANN001, ANN202
        if position == 3 and not recovered:  # the worker looked dead
            OutboxClaim.objects.filter(token=progress.token).update(
                lease_until=timezone.now() - timedelta(days=1)
            )
            recovered.append(outbox.recover_stuck_mail())
        return reach_data(progress, position)

    monkeypatch.setattr(
        outbox_results.SendProgress, "reach_data", recovered_before_mail_3
    )
    outbox.process_outbox()  # the batch stops; a new one takes mails 3-5
    assert recovered == [6]  # 0, 1 sent; 2 at stage data; 3-5 requeued
    subjects = [
        r.raw.split(b"Subject: ")[1].split(b"\r\n")[0] for r in outbox_server.received
    ]
    assert sorted(subjects) == [f"Mail {n}".encode() for n in range(6)]
    states = [
        m.state
        for m in OutgoingMail.objects.filter(pk__in=[m.pk for m in mails]).order_by(
            "pk"
        )
    ]
    # Mail 2's 250 came after recovery settled it: "cannot tell", to check.
    assert states == [State.SENT] * 2 + [State.FAILED] + [State.SENT] * 3


def test_trigger_and_beat_send_once(outbox_server):  # noqa: ANN001
    """The on-commit trigger and a beat pass racing for one mail send it once."""
    mail = queue()
    outbox.send_mail_item(mail_id=mail.pk)
    outbox.send_mail_item(mail_id=mail.pk)
    outbox.process_outbox()
    assert len(outbox_server.received) == 1


def test_bounce_is_recorded_on_the_recipient(outbox_server):  # noqa: ANN001
    """mark_recipient_bounced finds the recipient by Message-ID and address."""
    mail = queue()
    outbox.process_outbox()
    recipient = mark_recipient_bounced(
        message_id=mail.message_id, address="DANA@customer.test", reason="5.1.1 unknown"
    )
    assert recipient is not None and recipient.state == RState.BOUNCED
    assert mark_recipient_bounced(message_id="<x@y>", address="a@b", reason="") is None


def test_long_batch_hands_the_rest_back(outbox_server, monkeypatch):  # noqa: ANN001
    """A batch past its time budget requeues the rest untried; all are still sent."""
    monkeypatch.setattr(outbox, "BATCH_SECONDS", 0.0)
    mails = [queue(recipients=[MailRecipient(f"r{n}@x.test")]) for n in range(3)]
    report = outbox.process_outbox()
    assert report.sent == 3 and report.released == 3  # 2, then 1 handed back
    assert len(outbox_server.received) == 3
    for mail in mails:
        mail.refresh_from_db()
        assert mail.state == State.SENT and mail.attempts == 1


def test_mail_from_a_dkim_verified_domain_is_signed(outbox_server):  # noqa: ANN001
    """A From at a DKIM-verified sending domain leaves with a valid DKIM-Signature."""
    import dkim

    from dnscheck.models import SendingDomain
    from dnscheck.services import generate_dkim_key

    key = generate_dkim_key(bits=1024)
    SendingDomain.objects.create(name="catchall.test", is_dkim_verified=True)
    queue()
    outbox.process_outbox()
    raw = outbox_server.received[0].raw
    assert raw.startswith(b"DKIM-Signature:")
    record = key.dns_record.encode()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_unreachable_server_is_down_and_mail_waits(outbox_server, settings):  # noqa: ANN001
    """Nothing listens: the server is down, the mail waits for the probe with the
    reason and no attempt used; until the probe, nothing is tried again."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{port}"
    mail = queue()
    report = outbox.process_outbox()
    mail.refresh_from_db()
    assert report.released == 1 and report.deferred == 0
    assert mail.state == State.DEFERRED and mail.attempts == 0
    assert "refused the connection" in mail.last_error
    assert "goes out by itself" in mail.last_error
    health = OutgoingServerHealth.objects.get(key="default")
    assert health.is_down and health.failures == 1
    assert mail.next_attempt_at == health.probe_at > timezone.now()
    queue(subject="another")
    assert outbox.process_outbox() == outbox.DrainReport()  # waits for the probe


def test_process_outbox_command_runs_one_pass(outbox_server):  # noqa: ANN001
    """`manage.py process_outbox --recover` sends what is due and says so."""
    from io import StringIO

    from django.core.management import call_command

    queue()
    out = StringIO()
    call_command("process_outbox", "--recover", stdout=out)
    assert "recovered 0 stuck mail(s)" in out.getvalue()
    assert "sent 1, deferred 0, failed 0" in out.getvalue()
    assert len(outbox_server.received) == 1


def test_connection_lost_after_the_body_is_not_retried(outbox_server):  # noqa: ANN001
    """Stored by the server but no 250: failed with the reason, never sent twice."""
    outbox_server.drop_next(stage="after_data")
    first, second = queue(), queue(recipients=[MailRecipient("other@x.test")])
    outbox.process_outbox()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == State.FAILED
    assert "cannot tell whether it left" in first.last_error
    assert first.recipients.get().state == RState.FAILED
    assert second.state == State.SENT
    OutgoingMail.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    outbox.process_outbox()  # nothing retries it by itself
    address = first.recipients.get().address
    received = [r.rcpt_tos for r in outbox_server.received]
    assert received.count([address]) == 1 and len(received) == 2


def test_a_batch_whose_claim_was_taken_back_sends_nothing(outbox_server):  # noqa: ANN001
    """Recovery took a slow worker's claim back: the worker's next mail stops before
    its content (RSET), so nothing recovery requeued can leave twice."""
    queue()
    claim = outbox._claim(server_id=None, limit=5)
    OutboxClaim.objects.filter(token=claim.token).delete()  # recovery's doing
    report = outbox.DrainReport()
    outbox._send_batch(claim, report)
    assert outbox_server.received == [] and report == outbox.DrainReport()
    assert OutgoingMail.objects.get().state == State.SENDING  # recovery's to settle


@pytest.mark.django_db(transaction=True)
def test_deliveries_are_written_during_the_batch_and_all_by_its_end(
    outbox_server,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deliveries are committed in groups while the batch runs (on PostgreSQL by a
    connection of their own, not waited for), and every one is in before the
    batch's claim goes: no mail is left *sending* for recovery to guess about."""
    mails = queue_numbered(120)
    reach_data = outbox_results.SendProgress.reach_data
    seen: list[int] = []

    def watch(progress, position):  # noqa: ANN001, ANN202
        if position == 80:  # mails 0-49 were due at mail 50: written by now
            deadline = time.monotonic() + 5
            first = [m.pk for m in mails[:50]]
            while time.monotonic() < deadline:
                sent = OutgoingMail.objects.filter(pk__in=first, state=State.SENT)
                if sent.count() == 50:
                    break
                time.sleep(0.01)
            seen.append(sent.count())
            seen.append(OutboxClaim.objects.count())
        return reach_data(progress, position)

    monkeypatch.setattr(outbox_results.SendProgress, "reach_data", watch)
    assert outbox.process_outbox().sent == 120
    assert seen == [50, 1]  # during the batch, under its claim
    assert not OutboxClaim.objects.exists()
    assert set(OutgoingMail.objects.values_list("state", flat=True)) == {State.SENT}
    rcpts = OutgoingRecipient.objects.filter(mail__in=mails)
    assert set(rcpts.values_list("state", "smtp_code")) == {(RState.SENT, 250)}
    assert len(outbox_server.received) == 120


def backends() -> int:
    """Connections to this test database (PostgreSQL; 0 elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
        return int(cursor.fetchone()[0])


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every deliveries' connection the drain opens (PostgreSQL), as it opens it."""
    writers: list[object] = []
    real_open = outbox_results._SideWriter.open.__func__  # type: ignore[attr-defined]

    def watch(cls, token, params=None):  # noqa: ANN001, ANN202
        writers.append(writer := real_open(cls, token, params))
        return writer

    monkeypatch.setattr(outbox_results._SideWriter, "open", classmethod(watch))
    return writers


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_stops_before_its_first_group_leaves_no_connection_behind(
    outbox_server,  # noqa: ANN001
    opened: list,
) -> None:
    """A big batch has its deliveries' connection opened ahead (PostgreSQL); when
    the server cannot be reached, no group is ever written, and that connection
    is closed with the batch: none left open, no thread left running (one still
    opening ends by itself, closing what it got)."""
    queue_numbered(60)
    before = backends()  # this test's and any other live thread's (live server)
    outbox_server.stop_listening()
    try:
        report = outbox.process_outbox()
    finally:
        outbox_server.listen_again()
    assert report.released == 60 and report.sent == 0
    assert set(OutgoingMail.objects.values_list("state", "attempts")) == {
        (State.DEFERRED, 0)
    }
    for thread in threading.enumerate():  # an opening thread closes what it got
        if thread.name.startswith("outbox-"):
            thread.join(5)
            assert not thread.is_alive()
    postgres = connection.vendor == "postgresql"
    assert len(opened) == (1 if postgres else 0)  # opened ahead, never used
    assert all(writer.conn.closed for writer in opened)  # type: ignore[attr-defined]
    if postgres:  # a closed connection's server process ends a moment later
        deadline = time.monotonic() + 5
        while (now := backends()) != before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert now == before  # none more than before the drain


@pytest.mark.django_db(transaction=True)
def test_a_batch_too_small_for_a_group_opens_no_second_connection(
    outbox_server,  # noqa: ANN001
    opened: list,
) -> None:
    """Fifty mails or fewer never write a group aside: the drain (beat's, every
    few seconds) opens no deliveries' connection for them, and all are sent."""
    queue_numbered(outbox_results.SendProgress.FLUSH_EVERY)
    assert outbox.process_outbox().sent == outbox_results.SendProgress.FLUSH_EVERY
    assert opened == []
    assert set(OutgoingMail.objects.values_list("state", flat=True)) == {State.SENT}


def test_a_failed_read_ahead_is_raised_in_its_turn_not_lost() -> None:
    """Reading the next mail ahead (during the server's verdict wait) can fail
    (the database); the batch then fails at that mail, as without reading ahead,
    instead of ending early and leaving the rest claimed."""
    from mailservers.backends.smtp import SmtpConnection, SmtpParams

    def rows():  # noqa: ANN202
        yield (1, "a@catchall.test", b"Subject: one\r\n\r\nx\r\n", False)
        raise RuntimeError("the database went away")

    ahead = outbox._Ahead(
        rows(), {1: [("r@customer.test", "")]}, SmtpConnection(SmtpParams("h", 25))
    )
    mails = iter(ahead)
    assert next(mails)[0] == 1
    ahead.prepare_next()  # swallowed here (the SMTP verdict comes first)
    with pytest.raises(RuntimeError, match="went away"):
        next(mails)
