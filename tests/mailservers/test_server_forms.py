"""The outgoing and incoming server forms: every rule with a clear error, the port /
security warning, delete asks first, connection errors name host and port."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from mailservers.errors import TransientError
from mailservers.models import IncomingServer, OutgoingServer
from mailservers.services.incoming_connect import check_incoming_server
from tests.servers.net import free_port

pytestmark = pytest.mark.django_db
OUT = reverse("mailservers:outgoing-create")
IN = reverse("mailservers:incoming-create")


def outgoing(**fields: object) -> dict[str, object]:
    data = {"name": "Relay", "host": "smtp.example.com", "port": 587,
            "security": "starttls", "auth_method": "password", "username": "u",
            "password": "p", "from_filter": "", "priority": 10, "is_active": "on"}  # fmt: skip
    data.update(fields)
    return {f"server-{k}": v for k, v in data.items()}


def incoming(**fields: object) -> dict[str, object]:
    data = {"name": "Box", "kind": "imap", "host": "imap.example.com", "port": 993,
            "security": "ssl", "auth_method": "password", "username": "u",
            "password": "p", "folder": "INBOX", "after_store": "seen",
            "default_action": "knowlix.ticket", "poll_interval_minutes": 5}  # fmt: skip
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"host": "smtp example com"}, "smtp example com is not a host name"),
        ({"host": "smtp://mail.example.com"}, "is not a host name"),
        ({"host": "-bad-.example.com"}, "is not a host name"),
        ({"port": 99999}, "less than or equal to 65535"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"from_filter": "bad@@x, @@"}, "bad@@x is neither an email address"),
        ({"from_filter": "ok.example, not a domain"}, "not a domain is neither"),
    ],
)
def test_outgoing_form_rules(tech_client, fields, error):
    """Each garbage value is refused with its reason; nothing is saved."""
    response = tech_client.post(OUT, outgoing(**fields))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not OutgoingServer.objects.exists()


def test_outgoing_form_keeps_good_values(tech_client):
    """An IP host, an IDN domain filter and an address are stored normalized."""
    data = outgoing(
        host="127.0.0.1", from_filter="Sales@Company.example, bücher.example"
    )
    assert tech_client.post(OUT, data).status_code == 302
    server = OutgoingServer.objects.get()
    assert server.host == "127.0.0.1"
    assert server.from_filter == "sales@company.example, xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("port", "security", "warning"),
    [
        (465, "starttls", "Port 465 usually uses SSL/TLS"),
        (587, "ssl", "Port 587 usually uses STARTTLS"),
        (25, "ssl", "Port 25 usually uses no encryption or STARTTLS"),
    ],
)
def test_port_and_security_mismatch_is_a_warning(tech_client, port, security, warning):
    """A mismatch is saved (some servers do differ) with a warning."""
    response = tech_client.post(
        OUT, outgoing(port=port, security=security), follow=True
    )
    assert OutgoingServer.objects.get().port == port
    assert warning in response.content.decode()


def test_matching_port_and_security_has_no_warning(tech_client):
    response = tech_client.post(OUT, outgoing(port=465, security="ssl"), follow=True)
    assert "usually uses" not in response.content.decode()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"host": "imap example com"}, "imap example com is not a host name"),
        ({"port": 70000}, "less than or equal to 65535"),
    ],
)
def test_incoming_form_rules(tech_client, fields, error):
    """The incoming form applies the same host and port rules, in the same words."""
    response = tech_client.post(IN, incoming(**fields))
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not IncomingServer.objects.exists()


def test_incoming_port_mismatch_is_a_warning(tech_client):
    response = tech_client.post(IN, incoming(port=993, security="none"), follow=True)
    assert "Port 993 usually uses SSL/TLS" in response.content.decode()


def test_gmail_password_method_asks_for_the_password_before_saving(tech_client):
    """The Gmail preset switched to a password has the password input at once."""
    page = tech_client.get(OUT + "?preset=gmail").content.decode()
    assert 'name="server-password"' in page and "data-password-field" in page
    response = tech_client.post(
        OUT + "?preset=gmail",
        outgoing(host="smtp.gmail.com", username="me@gmail.com", password="app-pass"),
    )
    assert response.status_code == 302
    assert OutgoingServer.objects.get().password == "app-pass"


@pytest.mark.parametrize("kind", ["outgoing", "incoming"])
def test_delete_asks_for_confirmation(tech_client, kind):
    """The delete link shows a confirmation page; only its POST deletes."""
    if kind == "outgoing":
        server = OutgoingServer.objects.create(name="Relay", host="smtp.example.com")
    else:
        server = IncomingServer.objects.create(name="Box", host="imap.example.com")
    url = reverse(f"mailservers:{kind}-delete", args=[server.pk])
    page = tech_client.get(url)
    assert page.status_code == 200
    assert "Delete Relay?" in page.text or "Delete Box?" in page.text
    assert type(server).objects.filter(pk=server.pk).exists()
    assert tech_client.post(url).status_code == 302
    assert not type(server).objects.filter(pk=server.pk).exists()


def test_incoming_connection_error_names_host_and_port():
    """As on the outgoing side, a refused connection names host and port."""
    port = free_port()
    server = IncomingServer.objects.create(
        name="Box", host="127.0.0.1", port=port, security="none",
        username="u", password="p",
    )  # fmt: skip
    with pytest.raises(TransientError, match=f"127.0.0.1:{port}: .*refused"):
        check_incoming_server(server=server)


def test_both_server_pages_show_the_last_error_alike(tech_client):
    """The outgoing and incoming pages show a failed server's error in one block."""
    when = timezone.now()
    out = OutgoingServer.objects.create(
        name="Relay", host="smtp.example.com", last_error="smtp.example.com:587 down",
        last_error_at=when,
    )  # fmt: skip
    box = IncomingServer.objects.create(
        name="Box", host="imap.example.com", last_error="imap.example.com:993 down",
        last_error_at=when,
    )  # fmt: skip
    pages = [
        tech_client.get(reverse("mailservers:outgoing-edit", args=[out.pk])).text,
        tech_client.get(reverse("mailservers:incoming-detail", args=[box.pk])).text,
    ]
    errors = ["smtp.example.com:587", "imap.example.com:993"]
    for page, error in zip(pages, errors, strict=True):
        block = page.split('data-test="last-error"', 1)[1].split("</div>", 1)[0]
        assert 'badge badge-err">Last error<' in block and error in block
