"""The local mail catcher routes mail to the catch-all domain; the Local mailbox
answers a caught mail as its recipient through the same routing pipeline."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from feed.models import Message
from feed.services import post_message
from knowlix import params
from knowlix.celery import app
from knowlix.models import Ticket
from mailservers.models import CaughtMail
from mailservers.services.localmailbox import build_reply
from routing.models import InboundMail

CATCHALL = "catchall.test"


@pytest.fixture
def catchall(groups) -> Iterator[str]:  # noqa: ANN001
    """The catch-all domain and the module aliases (helpdesk@, ...)."""
    from tests.routing.conftest import ensure_module_aliases

    params.clear_cache()
    params.set_param(params.CATCHALL_DOMAIN, CATCHALL)
    ensure_module_aliases()
    yield CATCHALL
    params.clear_cache()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def send(port: int, rcpt: list[str], raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port) as conn:
        conn.sendmail("dana@customer.example", rcpt, raw)


def new_request(to: str) -> bytes:
    return (
        "From: Dana Customer <dana@customer.example>\r\n"
        f"To: {to}\r\n"
        "Subject: The printer prints nothing\r\n"
        "Message-ID: <req-1@customer.example>\r\n"
        "Date: Wed, 25 Nov 2026 09:00:00 +0000\r\n"
        "\r\n"
        "It only blinks.\r\n"
    ).encode()


@pytest.mark.django_db(transaction=True)
def test_caught_mail_to_helpdesk_creates_a_ticket(catchall, mailcatcher):  # noqa: ANN001
    """helpdesk@<catch-all> caught by a real catcher becomes a ticket."""
    send(mailcatcher, [f"helpdesk@{catchall}"], new_request(f"helpdesk@{catchall}"))
    ticket = Ticket.objects.get()
    assert ticket.subject == "The printer prints nothing"
    caught = CaughtMail.objects.get()
    assert caught.routing_outcome == "routed"
    assert caught.routing_routes[0]["record"] == f"knowlix.ticket:{ticket.pk}"
    assert InboundMail.objects.get().source == "mailcatcher"


@pytest.mark.django_db(transaction=True)
def test_caught_mail_to_an_outside_address_is_only_caught(catchall, mailcatcher):  # noqa: ANN001
    """Mail to an outside address is stored and routed nowhere."""
    send(mailcatcher, ["help@elsewhere.example"], new_request("help@elsewhere.example"))
    caught = CaughtMail.objects.get()
    assert caught.routing_outcome == ""
    assert not Ticket.objects.exists()
    assert not InboundMail.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_routing_failure_keeps_the_caught_mail(
    catchall, mailcatcher, monkeypatch, admin_user
):  # noqa: ANN001
    """If routing raises, the mail stays caught with the reason on its row and page."""
    import routing.services

    def broken(**kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(routing.services, "route_incoming_messages", broken)
    send(mailcatcher, [f"helpdesk@{catchall}"], new_request(f"helpdesk@{catchall}"))
    caught = CaughtMail.objects.get()
    assert caught.routing_outcome == "error"
    assert "database on fire" in caught.routing_error
    assert caught.subject == "The printer prints nothing"
    client = Client()
    client.force_login(admin_user)
    assert "database on fire" in client.get(caught.get_absolute_url()).text


@pytest.mark.django_db(transaction=True)
def test_reply_form_posts_on_the_ticket_under_the_original(
    catchall, mailcatcher, eager_celery, admin_user, alice, ticket, settings, tmp_path
):  # noqa: ANN001
    """Replying as the customer threads the reply, with its file, under the original."""
    settings.MEDIA_ROOT = tmp_path / "media"
    original = post_message(
        record=ticket,
        kind=Message.Kind.EMAIL,
        author=alice,
        subject="Your printer",
        body_html="<p>A technician comes at nine.</p>",
    )
    caught = CaughtMail.objects.get(rcpt_tos=["dana@customer.example"])
    assert caught.routing_outcome == ""  # to the customer: only caught

    client = Client(enforce_csrf_checks=False)
    client.force_login(admin_user)
    page = client.get(caught.get_absolute_url())
    assert "Reply as Dana Customer &lt;dana@customer.example&gt;" in page.text
    response = client.post(
        reverse("mailservers:localmailbox-reply", args=[caught.pk]),
        {
            "body": "Nine is fine.",
            "attachment": SimpleUploadedFile("photo.png", b"\x89PNG\r\n", "image/png"),
        },
    )
    assert response.status_code == 302
    reply = Message.objects.get(parent=original)
    assert reply.content_object == ticket
    assert reply.author_contact == ticket.contact
    assert "Nine is fine." in reply.body_text or "Nine is fine." in reply.body_html
    assert list(reply.attachments.values_list("filename", flat=True)) == ["photo.png"]
    shown = client.get(response["Location"])
    assert f"{ticket.get_absolute_url()}#message-{reply.pk}" in shown.text
    assert InboundMail.objects.get(source="localmailbox").outcome == "routed"


@pytest.mark.django_db
def test_reply_is_admin_only_post_only_and_csrf_checked(catchall, admin_user, alice):  # noqa: ANN001
    """Non-admins are turned away, GET is refused and a missing CSRF token is 403."""
    caught = CaughtMail.objects.create(
        mail_from="a@catchall.test",
        rcpt_tos=["dana@customer.example"],
        raw=b"From: a@catchall.test\r\nTo: dana@customer.example\r\n\r\nHi\r\n",
    )
    url = reverse("mailservers:localmailbox-reply", args=[caught.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(url, {"body": "x"}).status_code in (302, 403)
    client.force_login(admin_user)
    assert client.get(url).status_code == 405
    assert client.post(url, {"body": "x"}).status_code == 403
    assert not InboundMail.objects.exists()


@pytest.mark.django_db
def test_reply_bytes_are_a_proper_threaded_reply(catchall):  # noqa: ANN001
    """From the first recipient to Reply-To, Re: subject, chained ids, no injection."""
    raw = (
        b"From: Alice <notifications@catchall.test>\r\n"
        b"Reply-To: reply+tok@catchall.test\r\n"
        b"To: Dana <dana@customer.example>, other@customer.example\r\n"
        b"Subject: =?utf-8?q?Hello=0D=0ABcc:_evil@x.example?=\r\n"
        b"Message-ID: <m2@catchall.test>\r\n"
        b"References: <m0@catchall.test> <m1@catchall.test>\r\n"
        b"\r\nHi\r\n"
    )
    caught = CaughtMail.objects.create(
        mail_from="notifications@catchall.test",
        rcpt_tos=["dana@customer.example"],
        message_id="<m2@catchall.test>",
        raw=raw,
    )
    built = build_reply(caught=caught, body="Thanks\r\nBcc: x@y.example")
    msg = email.message_from_bytes(built, policy=email.policy.default)
    assert str(msg["From"]) == "Dana <dana@customer.example>"
    assert str(msg["To"]) == "reply+tok@catchall.test"
    assert str(msg["Subject"]) == "Re: Hello Bcc: evil@x.example"
    assert msg["Bcc"] is None
    assert str(msg["In-Reply-To"]) == "<m2@catchall.test>"
    assert str(msg["References"]).split() == [
        "<m0@catchall.test>",
        "<m1@catchall.test>",
        "<m2@catchall.test>",
    ]
    assert str(msg["Message-ID"]).endswith("@customer.example>")
    assert "Bcc: x@y.example" in msg.get_body(("plain",)).get_content()
