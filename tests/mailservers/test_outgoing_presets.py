"""Outgoing server presets (host, port, security, sign-in, limits) and OAuth forms."""

from __future__ import annotations

import pytest
from django.urls import reverse

from knowlix.users import get_profile
from mailservers.models import OAuthGrant, OutgoingServer

pytestmark = pytest.mark.django_db

CREATE = reverse("mailservers:outgoing-create")


@pytest.fixture
def tech(client, admin_user):  # noqa: ANN001, ANN201
    """A client logged in as an admin in developer mode."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save()
    client.force_login(admin_user)
    return client


def form_values(response) -> dict:  # noqa: ANN001
    form = response.context["form"]
    return {name: form[name].value() for name in form.fields}


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("gmail", ("smtp.gmail.com", 587, "starttls", "gmail", 20, None, 2000)),
        (
            "outlook",
            ("smtp.office365.com", 587, "starttls", "outlook", 30, None, 10000),
        ),
        (
            "mailjet",
            ("in-v3.mailjet.com", 587, "starttls", "password", None, None, 200),
        ),
    ],
)
def test_preset_fills_connection_sign_in_and_limits(tech, preset, expected):  # noqa: ANN001
    """Each preset fills host, port, security, authentication and sending limits."""
    values = form_values(tech.get(f"{CREATE}?preset={preset}"))
    names = ("host", "port", "security", "auth_method")
    limits = ("limit_per_minute", "limit_per_hour", "limit_per_day")
    assert tuple(values[n] for n in names + limits) == expected


def test_admin_changes_a_preset_limit(tech):  # noqa: ANN001
    """The preset's limits are defaults: what the admin posts is stored."""
    data = {
        "server-name": "Mailjet",
        "server-host": "in-v3.mailjet.com",
        "server-port": 587,
        "server-security": "starttls",
        "server-auth_method": "password",
        "server-username": "api-key",
        "server-password": "secret-key",
        "server-priority": 10,
        "server-is_active": "on",
        "server-limit_per_day": 6000,
    }
    response = tech.post(f"{CREATE}?preset=mailjet", data)
    assert response.status_code == 302
    server = OutgoingServer.objects.get()
    assert (server.preset, server.limit_per_day, server.password) == (
        "mailjet",
        6000,
        "secret-key",
    )


@pytest.mark.parametrize("preset", ["gmail", "outlook"])
def test_oauth_preset_form_keeps_a_hideable_password_input(tech, preset):  # noqa: ANN001
    """A new Gmail/Outlook server keeps the password row for the page's script (shown
    once *User name and password* is chosen) and has a read-only From Filter."""
    body = tech.get(f"{CREATE}?preset={preset}").content.decode()
    assert 'name="server-password"' in body and "data-password-field" in body
    assert "js/server_form.js" in body
    assert 'name="server-from_filter"' in body
    assert (
        'name="server-password"'
        in tech.get(f"{CREATE}?preset=mailjet").content.decode()
    )


def test_oauth_server_form_ignores_posted_password_and_from_filter(tech):  # noqa: ANN001
    """An OAuth server ignores a posted password and From Filter."""
    grant = OAuthGrant.objects.create(
        provider="outlook", account_address="sales@contoso.example"
    )
    server = OutgoingServer.objects.create(
        name="Outlook",
        host="smtp.office365.com",
        auth_method="outlook",
        oauth_grant=grant,
        username="sales@contoso.example",
        from_filter="sales@contoso.example",
    )
    url = reverse("mailservers:outgoing-edit", args=[server.pk])
    page = tech.get(url)
    assert page.context["form"].fields["from_filter"].disabled
    data = {
        "server-name": "Outlook",
        "server-host": "smtp.office365.com",
        "server-port": 587,
        "server-security": "starttls",
        "server-auth_method": "outlook",
        "server-username": "sales@contoso.example",
        "server-password": "sneaky",
        "server-from_filter": "contoso.example, other.example",
        "server-priority": 10,
        "server-is_active": "on",
    }
    assert tech.post(url, data).status_code == 302
    server.refresh_from_db()
    assert server.password == ""
    assert server.from_filter == "sales@contoso.example"
