"""Browser: the outgoing server form shows the password as soon as a password
method is chosen (Gmail with an app password), without saving first."""

from __future__ import annotations

import pytest

from knowlix.users import get_profile
from mailservers.models import OutgoingServer

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
    # Back on the saved server, switching to Gmail sign-in hides it again.
    page.locator("select[name='server-auth_method']").select_option("gmail")
    assert not page.locator("input[name='server-password']").is_visible()
