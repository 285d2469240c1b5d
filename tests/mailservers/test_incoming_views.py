"""Incoming server pages: access, form, Test & confirm, Fetch now and its progress."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from knowlix.celery import app
from mailservers.models import IncomingServer
from mailservers.services import incoming as service
from tests.mailservers import server_pages as pages
from tests.servers.dovecot_fixtures import make_mail


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_pages_need_developer_mode(client, admin_user, alice):
    """Admins without developer mode and employees get 403."""
    url = reverse("mailservers:incoming-list")
    client.force_login(alice)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 403


def test_create_server_encrypts_password(tech_client, dovecot_user, settings, test_ca):
    """The form creates a draft server; the password is encrypted at rest."""
    response = tech_client.post(
        reverse("mailservers:incoming-create"),
        {
            "name": "Support box",
            "kind": "imap",
            "host": dovecot_user.server.host,
            "port": dovecot_user.server.imaps_port,
            "security": "ssl",
            "username": dovecot_user.username,
            "password": dovecot_user.password,
            "auth_method": "password",
            "folder": "INBOX",
            "after_store": "keep",
            "default_action": "knowlix.ticket",
            "poll_interval_minutes": 5,
        },
    )
    server = IncomingServer.objects.get()
    assert response.status_code == 302
    assert server.state == IncomingServer.State.DRAFT
    assert server.password == dovecot_user.password
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM mailservers_incomingserver")
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and dovecot_user.password not in stored


def test_pop3_cannot_mark_seen(tech_client):
    """The form refuses after-store actions POP3 cannot do."""
    response = tech_client.post(
        reverse("mailservers:incoming-create"),
        {
            "name": "Box",
            "kind": "pop3",
            "host": "127.0.0.1",
            "security": "ssl",
            "username": "u",
            "password": "p",
            "auth_method": "password",
            "folder": "INBOX",
            "after_store": "seen",
            "default_action": "knowlix.ticket",
            "poll_interval_minutes": 5,
        },
    )
    assert response.status_code == 400
    assert "POP3 can only keep or delete" in response.text
    assert not IncomingServer.objects.exists()


def test_edit_keeps_password_and_resets_position(
    tech_client, dovecot_user, make_incoming_server
):
    """An empty password keeps the stored one; a new folder forgets the UID position."""
    server = make_incoming_server(dovecot_user, last_uid=42, uidvalidity=7)
    data = {
        "name": server.name,
        "kind": "imap",
        "host": server.host,
        "port": server.port,
        "security": "ssl",
        "username": server.username,
        "password": "",
        "auth_method": "password",
        "folder": "Support",
        "after_store": "keep",
        "default_action": "knowlix.ticket",
        "poll_interval_minutes": 5,
    }
    tech_client.post(reverse("mailservers:incoming-edit", args=[server.pk]), data)
    server.refresh_from_db()
    assert server.password == dovecot_user.password
    assert (server.folder, server.last_uid, server.uidvalidity) == ("Support", 0, None)
    assert server.state == IncomingServer.State.DRAFT


def test_test_and_confirm(tech_client, dovecot_user, make_incoming_server):
    """A working server is confirmed; the page says how many messages it saw."""
    dovecot_user.append(make_mail(1))
    server = make_incoming_server(dovecot_user, state="draft")
    response = tech_client.post(
        reverse("mailservers:incoming-test", args=[server.pk]), follow=True
    )
    server.refresh_from_db()
    assert server.state == IncomingServer.State.CONFIRMED
    assert "Connection OK: 1 messages in INBOX; server confirmed" in response.text


def test_test_reports_precise_error(tech_client, dovecot_user, make_incoming_server):
    """A wrong password is reported with the server's reason and kept on the row."""
    server = make_incoming_server(dovecot_user, state="draft")
    server.password = "wrong"
    server.save(update_fields=["password"])
    response = tech_client.post(
        reverse("mailservers:incoming-test", args=[server.pk]), follow=True
    )
    server.refresh_from_db()
    assert server.state == IncomingServer.State.DRAFT
    assert "AUTHENTICATIONFAILED" in response.text
    assert "AUTHENTICATIONFAILED" in server.last_error


def test_test_reports_wrong_port_security(
    tech_client, dovecot_user, make_incoming_server
):
    """SSL against a plain-text port fails with a TLS hint, not a traceback."""
    server = make_incoming_server(dovecot_user, state="draft")
    server.port = dovecot_user.server.imap_port
    server.save(update_fields=["port"])
    response = tech_client.post(
        reverse("mailservers:incoming-test", args=[server.pk]), follow=True
    )
    assert "check that the port matches the security setting" in response.text


def test_fetch_now_shows_progress_then_result(
    tech_client,
    dovecot_user,
    make_incoming_server,
    stub_routing,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    """Fetch now polls the server; the status fragment reports the finished fetch."""
    dovecot_user.append_many([make_mail(i) for i in range(3)])
    server = make_incoming_server(dovecot_user)
    url = reverse("mailservers:incoming-fetch", args=[server.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = tech_client.post(url)
    assert response.status_code == 302 and "since=" in response["Location"]
    assert stub_routing.count() == 3
    page = tech_client.get(response["Location"])
    assert 'data-phase="done"' in page.text
    assert "3 new messages checked" in page.text


def test_status_fragment_polls_while_running(
    tech_client, dovecot_user, make_incoming_server
):
    """While a poll holds the server, the fragment shows progress and re-polls."""
    server = make_incoming_server(dovecot_user)
    service.claim_poll(server=server)
    IncomingServer.objects.filter(pk=server.pk).update(poll_done=40, poll_total=100)
    url = reverse("mailservers:incoming-status", args=[server.pk])
    fragment = tech_client.get(url, {"since": "2026-01-01T00:00:00+00:00"})
    assert 'data-phase="running"' in fragment.text
    assert "40 / 100" in fragment.text and 'hx-trigger="every 1s"' in fragment.text


def test_list_shows_reason_of_failing_server(
    tech_client, dovecot_user, make_incoming_server, stub_routing
):
    """A server fault shows on the list and the server's page with its reason."""
    server = make_incoming_server(dovecot_user)
    server.password = "wrong"
    server.save(update_fields=["password"])
    with pytest.raises(service.MailServerError):
        service.poll_incoming_server(server=server)
    listing = tech_client.get(reverse("mailservers:incoming-list"))
    assert "Needs attention" in listing.text and "AUTHENTICATIONFAILED" in listing.text
    detail = tech_client.get(server.get_absolute_url())
    assert "Last error" in detail.text and "AUTHENTICATIONFAILED" in detail.text


def test_pages_share_the_outgoing_structure_and_words(tech_client, dovecot_user):
    """List columns, detail labels and actions, the saved/test/delete messages and
    the last error with host:port are those of the outgoing server pages."""
    host, port = dovecot_user.server.host, dovecot_user.server.imap_port
    saved = tech_client.post(
        reverse("mailservers:incoming-create"),
        {
            "name": "Support box",
            "kind": "imap",
            "host": host,
            "port": port,
            "security": "none",
            "username": dovecot_user.username,
            "password": "not-the-password",
            "auth_method": "password",
            "folder": "INBOX",
            "after_store": "keep",
            "default_action": "knowlix.ticket",
            "poll_interval_minutes": 5,
        },
        follow=True,
    ).text
    assert "Server Support box saved. Test the connection to confirm it." in saved
    server = IncomingServer.objects.get()
    pages.check_list(tech_client, "incoming", "Support box")
    pages.check_detail(tech_client, "incoming", server.pk, extra_actions=["Fetch now"])
    pages.check_failed_test(tech_client, "incoming", server.pk, f"{host}:{port}")
    pages.check_edit_and_delete(tech_client, "incoming", server.pk, "Support box")
    assert not IncomingServer.objects.exists()
