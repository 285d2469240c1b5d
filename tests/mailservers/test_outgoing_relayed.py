"""Our own mail coming back after a relay rewrote its Message-ID is still recognised."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from knowlix import params
from mailservers.services import outbox
from mailservers.services.outgoing import MailRecipient, queue_mail
from routing.models import InboundMail
from routing.services import route_incoming_message
from tests.servers.smtp_fixtures import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.django_db


def relay_rewrites_message_id(raw: bytes) -> bytes:
    """What Exchange or an ESP does: a Received line and a Message-ID of its own."""
    rewritten, count = re.subn(
        rb"(?im)^Message-ID:[^\r\n]*\r?\n",
        b"Message-ID: <AM0PR01MB1234.relay@relay.example>\r\n",
        raw,
        count=1,
    )
    assert count == 1
    return (
        b"Received: from knowlix by relay.example; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
        + (rewritten)
    )


def test_relayed_copy_with_rewritten_message_id_is_ours(settings, smtp_server):
    """The bytes the SMTP server got, Message-ID rewritten, route as a duplicate."""
    user, password = quote(SMTP_USER), quote(SMTP_PASSWORD)
    settings.KNOWLIX_SMTP_URL = f"smtp://{user}:{password}@127.0.0.1:{smtp_server.port}"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    mail = queue_mail(
        from_address="alice@catchall.test",
        from_name="Alice Agent",
        recipients=[MailRecipient("helpdesk@catchall.test", "Helpdesk")],
        subject="Your ticket",
        body_html="<p>On it.</p>",
        send_now=False,
    )
    assert outbox.process_outbox().sent == 1
    [received] = smtp_server.received
    assert f"X-Knowlix-Message-Id: {mail.message_id}".encode() in received.raw

    relayed = relay_rewrites_message_id(received.raw)
    assert mail.message_id.encode() not in relayed.split(b"X-Knowlix-Message-Id")[0]
    result = route_incoming_message(raw=relayed, source="test")
    assert result.outcome == "duplicate"
    assert "X-Knowlix-Message-Id" in result.reason
    assert not InboundMail.objects.exists()

    # Without the header the same relayed bytes would be taken for a new message.
    stripped = re.sub(rb"(?im)^X-Knowlix-Message-Id:[^\r\n]*\r?\n", b"", relayed)
    assert route_incoming_message(raw=stripped, source="test").outcome != "duplicate"
