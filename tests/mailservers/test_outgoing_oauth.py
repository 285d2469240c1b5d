"""Outgoing servers that sign in with an OAuth grant (XOAUTH2) through the queue."""

from __future__ import annotations

import pytest

from knowlix import params
from mailservers.models import OutgoingMail, OutgoingServer
from mailservers.services import outbox
from mailservers.services.outgoing import (
    MailRecipient,
    check_server_connection,
    queue_mail,
)
from tests.mailservers.oauth_helpers import make_grant

pytestmark = pytest.mark.django_db
ADDRESS = "ops@gmail.example"


@pytest.fixture
def gmail_server(oauth_server, starttls_server, smtp_ca_settings):  # noqa: ANN001, ANN201
    """A Gmail-OAuth outgoing server on the STARTTLS loopback server."""
    starttls_server.xoauth2_validator = oauth_server.check_xoauth2
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    params.set_param(params.USE_CUSTOM_SERVERS, "true")
    grant = make_grant(oauth_server, address=ADDRESS)
    server = OutgoingServer.objects.create(
        name="Gmail",
        host="127.0.0.1",
        port=starttls_server.port,
        security="starttls",
        auth_method="gmail",
        oauth_grant=grant,
        username=ADDRESS,
        from_filter=ADDRESS,
    )
    return server, grant


def test_refused_token_is_refreshed_once_and_mail_sent(
    gmail_server, oauth_server, starttls_server
):  # noqa: ANN001
    """The provider refuses the stored token: the drain refreshes it once and sends."""
    server, grant = gmail_server
    oauth_server.revoke(grant.access_token)
    mail = queue_mail(
        from_address=ADDRESS,
        recipients=[MailRecipient("dana@customer.test")],
        subject="Hello",
        body_text="Hi",
        send_now=False,
    )
    assert outbox.process_outbox().sent == 1
    mail.refresh_from_db()
    assert mail.server == server and mail.state == OutgoingMail.State.SENT
    assert starttls_server.logins == [ADDRESS]
    assert len(oauth_server.refresh_requests()) == 1


def test_test_connection_signs_in_with_the_grant(gmail_server, starttls_server):  # noqa: ANN001
    """Test Connection on an OAuth server authenticates with XOAUTH2."""
    server, _grant = gmail_server
    check = check_server_connection(server=server)
    assert check.ok, check.message
    assert starttls_server.logins == [ADDRESS]


def test_server_without_account_waits_and_says_why(gmail_server, starttls_server):  # noqa: ANN001
    """An OAuth server with no connected account: mail waits, the server says why."""
    server, _grant = gmail_server
    OutgoingServer.objects.filter(pk=server.pk).update(oauth_grant=None)
    queue_mail(
        from_address=ADDRESS,
        recipients=[MailRecipient("dana@customer.test")],
        subject="Hello",
        body_text="Hi",
        send_now=False,
    )
    outbox.process_outbox()
    server.refresh_from_db()
    assert server.needs_attention and "Connect your account" in server.last_error
    assert OutgoingMail.objects.get().state == OutgoingMail.State.DEFERRED
    assert starttls_server.received == []
