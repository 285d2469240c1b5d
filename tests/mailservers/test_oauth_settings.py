"""The Outlook/Gmail client registrations page: secrets encrypted and write-only."""

from __future__ import annotations

import pytest

from knowlix.models import SystemParameter
from mailservers.oauth import config

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_user("root", is_staff=True)
    client.force_login(admin)
    return client


def test_admin_saves_client_ids_and_secrets_encrypted(admin_client, settings):
    """Secrets are stored encrypted, never rendered back, kept when left empty."""
    settings.KNOWLIX_BASE_URL = "https://crm.example.com"
    answer = admin_client.post(
        "/settings/technical/email/oauth/",
        {
            "outlook_client_id": "11111111-aaaa",
            "outlook_client_secret": "azure-secret-value-1234",
            "outlook_tenant": "contoso.onmicrosoft.com",
            "gmail_client_id": "42.apps.googleusercontent.com",
            "gmail_client_secret": "GOCSPX-gmail-secret",
        },
    )
    assert answer.status_code == 302
    stored = SystemParameter.objects.get(key=config.OUTLOOK_CLIENT_SECRET).value
    assert stored.startswith("fernet:") and "azure-secret" not in stored
    assert (
        config.get_client_config("outlook").client_secret == "azure-secret-value-1234"
    )
    assert config.get_client_config("outlook").tenant == "contoso.onmicrosoft.com"

    page = admin_client.get("/settings/technical/email/oauth/").content.decode()
    assert "azure-secret-value-1234" not in page and "GOCSPX-gmail-secret" not in page
    assert "••••1234" in page
    assert "https://crm.example.com/microsoft_outlook/confirm" in page
    assert "https://crm.example.com/google_gmail/confirm" in page
    assert "IMAP.AccessAsUser.All" in page and "https://mail.google.com/" in page

    admin_client.post(
        "/settings/technical/email/oauth/",
        {"outlook_client_id": "22222222-bbbb", "gmail_client_id": "42.apps"},
    )
    kept = config.get_client_config("outlook")
    assert (kept.client_id, kept.client_secret) == (
        "22222222-bbbb",
        "azure-secret-value-1234",
    )


def test_secret_without_client_id_is_refused(admin_client):
    """A secret alone is a form error, nothing is stored."""
    answer = admin_client.post(
        "/settings/technical/email/oauth/", {"gmail_client_secret": "orphan"}
    )
    assert answer.status_code == 400
    assert "Enter the client ID too." in answer.content.decode()
    assert not SystemParameter.objects.filter(key=config.GMAIL_CLIENT_SECRET).exists()


def test_non_admin_cannot_open_oauth_settings(client, django_user_model):
    """Only admins see or change the client registrations."""
    client.force_login(django_user_model.objects.create_user("carol"))
    assert client.get("/settings/technical/email/oauth/").status_code == 403
