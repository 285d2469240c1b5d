"""Browser: the outgoing server form shows the password as soon as a password
method is chosen (Gmail with an app password), without saving first."""

from __future__ import annotations

import pytest

from knowlix.users import get_profile
from mailservers.models import IncomingServer, OutgoingServer

pytestmark = pytest.mark.browser


def test_gmail_preset_switched_to_password_shows_the_field(page, login, admin_user):
    """Gmail sign-in hides the password row; "User name and password" shows it."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    login(admin_user)
    page.goto("/settings/technical/email/outgoing/new/?preset=gmail")
    password = page.locator("input[name='server-password']")
    method = page.locator("select[name='server-auth_method']")
    assert method.input_value() == "gmail"
    assert not password.is_visible()
    method.select_option("password")
    assert password.is_visible()
    page.fill("input[name='server-username']", "me@gmail.com")
    password.fill("abcd efgh ijkl mnop")
    page.click("button:has-text('Save')")
    page.locator(".page-header h1", has_text="Gmail").wait_for()
    server = OutgoingServer.objects.get()
    assert (server.auth_method, server.password) == ("password", "abcd efgh ijkl mnop")
    # Back on the saved server's form, switching to Gmail sign-in hides it again.
    page.click("#edit-server")
    page.locator("select[name='server-auth_method']").select_option("gmail")
    assert not page.locator("input[name='server-password']").is_visible()


def test_both_kinds_of_server_page_look_alike_on_a_phone(page, login, admin_user):
    """On a phone-sized screen, an incoming and an outgoing server's pages show the
    same labels and actions, and Delete asks before it deletes."""
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    login(admin_user)
    page.set_viewport_size({"width": 390, "height": 844})
    servers = [
        OutgoingServer.objects.create(name="Relay", host="smtp.example.com"),
        IncomingServer.objects.create(
            name="Box", host="imap.example.com", username="box"
        ),
    ]
    seen = []
    for server in servers:
        page.goto(server.get_absolute_url())
        actions = page.locator("[data-test=server-actions]")
        for word in ("Test connection", "Edit", "Delete"):
            assert actions.get_by_text(word, exact=True).is_visible()
        labels = page.locator("[data-test=server-detail] dt").all_inner_texts()
        seen.append([x for x in labels if x in ("Type", "Server", "Login")])
        assert page.locator(".server-state").is_visible()
        page.click("#delete-server")
        page.locator("[data-test=confirm-delete]").wait_for()
        page.click("text=Cancel")
        page.locator("[data-test=server-detail]").wait_for()
        assert type(server).objects.filter(pk=server.pk).exists()
    assert seen[0] == seen[1] == ["Type", "Server", "Login"]
