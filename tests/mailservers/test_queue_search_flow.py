"""The Email queue's search, server filter and pagination keep each other; the Mail
flow page counts sent, deferred, failed, bounced and received mail per day and per
server from the real queue."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from knowlix import params
from knowlix.users import get_profile
from mailservers.models import OutgoingMail
from mailservers.services import outbox
from mailservers.services.outgoing import MailRecipient, queue_mail
from routing.services import route_incoming_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def tech(client, admin_user):
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save()
    client.force_login(admin_user)
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return client


def queued(subject: str, to: str = "dana@customer.test") -> OutgoingMail:
    return queue_mail(
        from_address="a@catchall.test",
        recipients=[MailRecipient(to)],
        subject=subject,
        body_text="Hi",
        send_now=False,
    )


def test_queue_search_by_subject_and_recipient(tech):
    """Search finds mail by its subject or a recipient's address, nothing else."""
    queued("Invoice 42")
    queued("Printer", to="zed@elsewhere.test")
    url = reverse("mailservers:queue")
    html = tech.get(url, {"q": "invoice"}).content.decode()
    assert "Invoice 42" in html and "Printer" not in html
    html = tech.get(url, {"q": "zed@"}).content.decode()
    assert "Printer" in html and "Invoice 42" not in html
    assert "All (1)" in html  # the state counts follow the search


def test_queue_pagination_keeps_search_and_state(tech):
    """Page links carry the search and state; the second page holds the rest."""
    for n in range(55):
        queued(f"Bulk {n}")
    queued("Other")
    url = reverse("mailservers:queue")
    html = tech.get(url, {"q": "bulk", "state": "queued"}).content.decode()
    assert html.count("Bulk ") == 50
    older = re.search(r'href="(\?page=2[^"]*)"', html)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert "q=bulk" in link and "state=queued" in link
    second = tech.get(url + link).content.decode()
    assert second.count("Bulk ") == 5 and "Other" not in second


def test_queue_filters_by_server(tech):
    """The server filter shows only the mail of the chosen server."""
    queued("Through the default")
    other = queued("Through the relay")
    OutgoingMail.objects.filter(pk=other.pk).update(server_label="Company relay")
    url = reverse("mailservers:queue")
    html = tech.get(url, {"server": "Company relay"}).content.decode()
    assert "Through the relay" in html and "Through the default" not in html
    html = tech.get(url).content.decode()
    assert "Through the relay" in html and "Through the default" in html
    assert '<option value="Company relay"' in html


def test_mail_flow_counts_real_queue_data(tech, settings, smtp_server):
    """Sent, failed, deferred and received today show in today's bars and totals."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    for n in range(3):
        queued(f"Fine {n}")
    outbox.process_outbox()
    smtp_server.reject_next(550, "5.1.1 No such user", stage="rcpt")
    queued("Refused")
    outbox.process_outbox()
    smtp_server.reject_next(451, "4.7.1 Greylisted", stage="rcpt")
    queued("Later")
    outbox.process_outbox()
    raw = (
        b"From: x@client.test\r\nTo: someone@elsewhere.test\r\nSubject: Hi\r\n"
        b"Message-ID: <flow-1@client.test>\r\n\r\nHello\r\n"
    )
    route_incoming_message(raw=raw, source="test")
    html = tech.get(reverse("mailservers:mail-flow")).content.decode()
    today = timezone.localdate().strftime("%d %b")
    for series, count in (("sent", 3), ("failed", 1), ("deferred", 1), ("received", 1)):
        assert f'data-series="{series}" data-count="{count}"' in html, series
        assert f"<title>{today}: {count} {series}</title>" in html
    assert 'data-series="bounced"' not in html.split("<figcaption")[0]


def test_mail_flow_per_server_filter(tech):
    """Choosing the pipe shows its received mail and no outgoing mail; choosing
    the sending server shows its mail and nothing received."""
    raw = (
        b"From: x@client.test\r\nTo: someone@elsewhere.test\r\nSubject: Hi\r\n"
        b"Message-ID: <flow-2@client.test>\r\n\r\nHello\r\n"
    )
    route_incoming_message(raw=raw, source="test")
    queued("Out")
    OutgoingMail.objects.update(state="sent")
    OutgoingMail.objects.get().recipients.update(state="sent")
    url = reverse("mailservers:mail-flow")
    html = tech.get(url, {"server": "Pipe and local mailbox"}).content.decode()
    chart = html.split("<figcaption")[0]
    assert 'data-series="received" data-count="1"' in chart
    assert 'data-series="sent"' not in chart
    label = OutgoingMail.objects.get().server_label or "Default server"
    html = tech.get(url, {"server": label}).content.decode()
    chart = html.split("<figcaption")[0]
    assert 'data-series="sent" data-count="1"' in chart
    assert 'data-series="received"' not in chart
