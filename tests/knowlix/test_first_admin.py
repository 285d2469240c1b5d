"""The first administrator's set-up page: open only while no user exists, and
only with the code the web service prints."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from knowlix import firstadmin
from knowlix.setup import EMPLOYEES

pytestmark = pytest.mark.django_db

FORM = {
    "username": "boss",
    "email": "boss@company.example",
    "password1": "a long pass phrase",
    "password2": "a long pass phrase",
}


def test_page_needs_the_code(client):
    """Without the code, or with a wrong one, the page does not exist."""
    url = reverse("first-admin")
    assert client.get(url).status_code == 404
    assert client.get(url, {"code": "0" * 32}).status_code == 404
    assert client.post(url + "?code=" + "0" * 32, FORM).status_code == 404
    assert not User.objects.exists()


def test_code_creates_a_superuser_and_logs_in(client):
    """The form creates a superuser in Employees and signs them in."""
    response = client.post(firstadmin.setup_path(), FORM, follow=True)
    user = User.objects.get()
    assert (user.username, user.is_superuser, user.is_staff) == ("boss", True, True)
    assert user.groups.filter(name=EMPLOYEES).exists()
    assert response.wsgi_request.user == user
    assert "You are the administrator" in response.text


def test_page_closes_once_a_user_exists(client, alice):
    """Any user at all (a createsuperuser, the demo) closes the page for good."""
    assert client.get(firstadmin.setup_path()).status_code == 404
    assert client.post(firstadmin.setup_path(), FORM).status_code == 404
    assert not User.objects.filter(username="boss").exists()


def test_mismatched_passwords_are_refused(client):
    """Bad input comes back with the form's error; nothing is created."""
    response = client.post(firstadmin.setup_path(), {**FORM, "password2": "other"})
    assert response.status_code == 400
    assert not User.objects.exists()


def test_link_command_prints_the_link_only_while_no_user(capsys, settings, alice):
    """``first_admin_link`` prints nothing usable once a user exists."""
    call_command("first_admin_link")
    assert "Users exist already" in capsys.readouterr().out


def test_link_command_prints_the_public_link(capsys, settings):
    settings.KNOWLIX_BASE_URL = "https://crm.example.com/"
    call_command("first_admin_link")
    out = capsys.readouterr().out
    assert f"https://crm.example.com{firstadmin.setup_path()}" in out
