"""Each attempt picks its server afresh; Retry is one counted attempt that says
what it did. Real loopback servers: the default one, and a custom one that is down."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.urls import reverse
from django.utils import timezone

from knowlix import params
from mailservers.models import OutgoingMail, OutgoingRecipient, OutgoingServer
from mailservers.services import outbox
from mailservers.services.outgoing import MailRecipient, queue_mail
from tests.servers.net import free_port

pytestmark = pytest.mark.django_db
State = OutgoingMail.State


def queue_to_dana(**overrides: str) -> OutgoingMail:
    values = {"from_address": "alice@catchall.test", "from_name": ""} | overrides
    return queue_mail(
        **values,
        recipients=[MailRecipient("dana@customer.test")],
        subject="Your order",
        body_text="Shipped.",
        send_now=False,
    )


@pytest.fixture
def default_sink(settings, smtp_server):  # noqa: ANN001, ANN201
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    settings.KNOWLIX_SMTP_TIMEOUT = 5
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return smtp_server


@pytest.fixture
def deferred_on_custom(default_sink):  # noqa: ANN001, ANN201
    """bob@company.test's mail, deferred: its custom server is down."""
    params.set_param(params.USE_CUSTOM_SERVERS, "true")
    relay = OutgoingServer.objects.create(
        name="Company relay",
        host="127.0.0.1",
        port=free_port(),  # nothing listens: connection refused
        security="none",
        from_filter="company.test",
    )
    mail = queue_to_dana(from_address="bob@company.test", from_name="Bob")
    outbox.process_outbox()
    mail.refresh_from_db()
    assert (mail.state, mail.server) == (State.DEFERRED, relay)
    assert default_sink.received == []
    OutgoingMail.objects.filter(pk=mail.pk).update(next_attempt_at=timezone.now())
    return mail, relay


def sent_through_default(mail, sink):  # noqa: ANN001, ANN201
    outbox.process_outbox()
    mail.refresh_from_db()
    assert mail.state == State.SENT and mail.server is None
    assert "chosen again" in mail.selection_reason
    (received,) = sink.received
    return email.message_from_bytes(received.raw, policy=email.policy.default)


def test_custom_servers_switched_off_while_mail_is_deferred(
    deferred_on_custom, default_sink
):
    """Switched off: the next attempt leaves through the default server, From
    rewritten to the default address, replies still going to Bob."""
    mail, _relay = deferred_on_custom
    params.set_param(params.USE_CUSTOM_SERVERS, "false")
    sent = sent_through_default(mail, default_sink)
    assert sent["From"].addresses[0].addr_spec == "notifications@catchall.test"
    assert sent["From"].addresses[0].display_name == "Bob"
    assert sent["Reply-To"].addresses[0].addr_spec == "bob@company.test"
    assert sent["Subject"] == "Your order" and "Shipped." in sent.get_content()
    assert len(sent.get_all("From")) == 1
    assert mail.original_from == "bob@company.test"


def test_server_deactivated_while_mail_is_deferred(deferred_on_custom, default_sink):
    """A deactivated server's deferred mail goes to the next choice."""
    mail, relay = deferred_on_custom
    OutgoingServer.objects.filter(pk=relay.pk).update(is_active=False)
    sent_through_default(mail, default_sink)


def test_server_deleted_while_mail_is_deferred(deferred_on_custom, default_sink):
    """A deleted server's deferred mail is chosen for again, not stranded."""
    mail, relay = deferred_on_custom
    relay.delete()
    sent = sent_through_default(mail, default_sink)
    assert sent["Reply-To"].addresses[0].addr_spec == "bob@company.test"


def test_retry_is_a_counted_attempt_that_says_what_it_did(tech_client, default_sink):
    """Retry of a failed mail sends it at once, counts the attempt and reports it."""
    default_sink.fail_rcpt("dana@customer.test", 550, "5.1.1 no such user", times=1)
    mail = queue_to_dana()
    outbox.process_outbox()
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (State.FAILED, 1)
    response = tech_client.post(
        reverse("mailservers:queue-retry", args=[mail.pk]), follow=True
    )
    assert "Attempt 2 through Default server: sent." in response.text
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (State.SENT, 2)
    assert OutgoingRecipient.objects.get().state == "sent"
    assert len(default_sink.received) == 1


def test_retry_of_a_mail_that_fails_again_says_why(tech_client, default_sink):
    """A retry refused again reports the attempt number and the server's reason."""
    default_sink.fail_rcpt("dana@customer.test", 550, "5.1.1 no such user")
    mail = queue_to_dana()
    outbox.process_outbox()
    response = tech_client.post(
        reverse("mailservers:queue-retry", args=[mail.pk]), follow=True
    )
    assert "Attempt 2 through Default server: failed" in response.text
    assert "no such user" in response.text
