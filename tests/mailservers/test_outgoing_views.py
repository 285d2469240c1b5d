"""Outgoing pages: servers (page, form, Test connection), the Email queue, the Local mailbox."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from knowlix import params
from knowlix.users import get_profile
from mailservers.mime import MailPart, build_message
from mailservers.models import CaughtMail, OutgoingMail, OutgoingServer
from mailservers.services.outgoing import MailRecipient, queue_mail
from tests.mailservers import server_pages as pages
from tests.servers.smtp_fixtures import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.django_db


@pytest.fixture
def tech(client, admin_user):  # noqa: ANN001, ANN201
    """A client logged in as an admin in developer mode."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save()
    client.force_login(admin_user)
    return client


def server_post(smtp, **overrides) -> dict:  # noqa: ANN001, ANN003
    data = {
        "server-name": "Relay",
        "server-host": "127.0.0.1",
        "server-port": smtp.port,
        "server-security": "none",
        "server-auth_method": "password",
        "server-username": SMTP_USER,
        "server-password": SMTP_PASSWORD,
        "server-from_filter": "company.test",
        "server-priority": 10,
        "server-is_active": "on",
    }
    data.update({f"server-{k}": v for k, v in overrides.items()})
    return data


def test_server_pages_need_developer_mode(client, admin_user, alice):  # noqa: ANN001
    """Admins without developer mode and employees get 403; technical admins 200."""
    url = reverse("mailservers:outgoing-list")
    client.force_login(alice)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 403
    get_profile(admin_user).__class__.objects.filter(user=admin_user).update(
        developer_mode=True
    )
    assert client.get(url).status_code == 200


def test_preset_fills_host_and_hint(tech):  # noqa: ANN001
    """The Mailjet preset fills host/port/security and shows the API key hint."""
    page = tech.get(reverse("mailservers:outgoing-create") + "?preset=mailjet")
    body = page.content.decode()
    assert 'value="in-v3.mailjet.com"' in body
    assert "API key" in body and "sending domain" in body


def test_create_stores_password_encrypted(tech, smtp_server):  # noqa: ANN001
    """Saving a server stores the password encrypted; an empty one keeps it."""
    response = tech.post(
        reverse("mailservers:outgoing-create"), server_post(smtp_server)
    )
    server = OutgoingServer.objects.get()
    assert response.status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM mailservers_outgoingserver")
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and SMTP_PASSWORD not in stored
    edit = reverse("mailservers:outgoing-edit", args=[server.pk])
    tech.post(edit, server_post(smtp_server, password="", name="Renamed"))
    server.refresh_from_db()
    assert server.name == "Renamed" and server.password == SMTP_PASSWORD


def test_test_connection_reports_success_and_failure(tech, smtp_server):  # noqa: ANN001
    """Test Connection says it worked, or why not, and stores the error on the row."""
    tech.post(reverse("mailservers:outgoing-create"), server_post(smtp_server))
    server = OutgoingServer.objects.get()
    url = reverse("mailservers:outgoing-test", args=[server.pk])
    page = tech.post(url, follow=True)
    assert "accepted the login" in page.content.decode()
    server.password = "wrong"
    server.save()
    page = tech.post(url, follow=True)
    assert "refused the credentials" in page.content.decode()
    server.refresh_from_db()
    assert "refused the credentials" in server.last_error


def test_queue_lists_by_state_with_retry_and_cancel(tech):  # noqa: ANN001
    """The queue filters by state; Cancel then Retry change the mail's state."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    mail = queue_mail(
        from_address="a@catchall.test",
        recipients=[MailRecipient("dana@customer.test")],
        subject="Queued one",
        body_text="Hi",
        send_now=False,
    )
    url = reverse("mailservers:queue")
    assert "Queued one" in tech.get(url + "?state=queued").content.decode()
    assert "Queued one" not in tech.get(url + "?state=failed").content.decode()
    tech.post(reverse("mailservers:queue-cancel", args=[mail.pk]))
    mail.refresh_from_db()
    assert mail.state == OutgoingMail.State.CANCELLED
    # Retry is an attempt at once; no server listens here, so it is deferred.
    response = tech.post(
        reverse("mailservers:queue-retry", args=[mail.pk]), follow=True
    )
    mail.refresh_from_db()
    assert (mail.state, mail.attempts) == (OutgoingMail.State.DEFERRED, 1)
    assert "Attempt 1 through Default server: deferred" in response.content.decode()


def caught_mail() -> CaughtMail:
    raw = build_message(
        from_addr=("Alice", "alice@catchall.test"),
        to=["dana@customer.test"],
        subject="Printer on fire",
        text="Plain words",
        html='<p>Rich <b>words</b></p><script>alert("x")</script>',
        message_id="<c1@catchall.test>",
        attachments=[MailPart("report.pdf", b"%PDF-1.4 data", "application/pdf")],
    )
    return CaughtMail.objects.create(
        mail_from="alice@catchall.test",
        rcpt_tos=["dana@customer.test"],
        subject="Printer on fire",
        raw=raw,
        size=len(raw),
    )


def test_local_mailbox_shows_html_text_headers_attachments(client, admin_user):  # noqa: ANN001
    """Any admin reads caught mail: sanitized HTML, text, headers, attachments."""
    client.force_login(admin_user)
    mail = caught_mail()
    listing = client.get(reverse("mailservers:localmailbox")).content.decode()
    assert "Printer on fire" in listing
    url = reverse("mailservers:localmailbox-detail", args=[mail.pk])
    html = client.get(url).content.decode()
    assert "<b>words</b>" in html and "alert(" not in html
    assert "Plain words" in client.get(url + "?view=text").content.decode()
    assert (
        "&lt;c1@catchall.test&gt;" in client.get(url + "?view=headers").content.decode()
    )
    assert "report.pdf" in client.get(url + "?view=attachments").content.decode()
    download = client.get(
        reverse("mailservers:localmailbox-attachment", args=[mail.pk, 0])
    )
    assert download.content == b"%PDF-1.4 data"
    assert "report.pdf" in download["Content-Disposition"]


def test_local_mailbox_is_for_admins(client, alice):  # noqa: ANN001
    """An employee cannot read the local mailbox."""
    client.force_login(alice)
    assert client.get(reverse("mailservers:localmailbox")).status_code == 403


def test_pages_share_the_incoming_structure_and_words(tech, smtp_server):  # noqa: ANN001
    """List columns, detail labels and actions, the saved/test/delete messages and
    the last error with host:port are those of the incoming server pages."""
    saved = tech.post(
        reverse("mailservers:outgoing-create"),
        server_post(smtp_server, password="not-the-password"),
        follow=True,
    ).text
    assert "Server Relay saved. Test the connection to confirm it." in saved
    server = OutgoingServer.objects.get()
    pages.check_list(tech, "outgoing", "Relay")
    pages.check_detail(tech, "outgoing", server.pk, extra_actions=[])
    endpoint = f"{smtp_server.host}:{smtp_server.port}"
    pages.check_failed_test(tech, "outgoing", server.pk, endpoint)
    server.password = SMTP_PASSWORD
    server.save()
    url = reverse("mailservers:outgoing-test", args=[server.pk])
    assert "Connection OK: Connected to" in tech.post(url, follow=True).text
    pages.check_edit_and_delete(tech, "outgoing", server.pk, "Relay")
    assert not OutgoingServer.objects.exists()


def test_old_server_url_shows_the_page_and_still_saves(tech, smtp_server):  # noqa: ANN001
    """/outgoing/<pk>/ was the edit form: it now shows the server's page, and a
    form posted there (a tab open across the upgrade) still saves."""
    tech.post(reverse("mailservers:outgoing-create"), server_post(smtp_server))
    server = OutgoingServer.objects.get()
    url = reverse("mailservers:outgoing-detail", args=[server.pk])
    assert url.endswith(f"/outgoing/{server.pk}/")  # the old edit URL
    assert 'data-test="server-detail"' in tech.get(url).text
    response = tech.post(url, server_post(smtp_server, name="Renamed", password=""))
    assert response.status_code == 302 and response["Location"] == url
    server.refresh_from_db()
    assert server.name == "Renamed" and server.password == SMTP_PASSWORD


def test_server_page_lists_its_limits_in_words(tech):  # noqa: ANN001
    """The page names each sending limit that is set, and none when none is."""
    server = OutgoingServer.objects.create(
        name="Relay", host="smtp.example.com", limit_per_minute=30, limit_per_day=900
    )
    url = reverse("mailservers:outgoing-detail", args=[server.pk])
    assert "30 per minute, 900 per day" in tech.get(url).text
    OutgoingServer.objects.filter(pk=server.pk).update(
        limit_per_minute=None, limit_per_day=None
    )
    facts = tech.get(url).text.split("Sending limits", 1)[1].split("</dd>", 1)[0]
    assert '<span class="muted">none</span>' in facts
