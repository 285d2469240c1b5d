"""General Settings, developer mode, preferences and system parameters."""

from knowlix import params
from knowlix.users import get_profile


def test_settings_are_for_admins_only(client, alice, admin_user):
    """A regular user gets 403; an admin sees the page."""
    client.force_login(alice)
    assert client.get("/settings/").status_code == 403
    client.force_login(admin_user)
    response = client.get("/settings/")
    assert response.status_code == 200 and "General Settings" in response.text


def test_admin_saves_catchall_domain_and_bad_domain_is_refused(client, admin_user):
    """A valid domain is stored as a system parameter; garbage gets a field error."""
    client.force_login(admin_user)
    data = {"catchall_domain": "not a domain", "default_from": "notifications",
            "bounce_alias": "bounce"}  # fmt: skip
    response = client.post("/settings/", data)
    assert (
        response.status_code == 400
        and "Enter a domain such as company.com." in response.text
    )
    data["catchall_domain"] = "Acme.Example"
    data["default_from"] = "no reply"
    response = client.post("/settings/", data)
    assert "Enter only the part before the @" in response.text
    data["default_from"] = "hello"
    assert client.post("/settings/", data).status_code == 302
    assert params.default_from_address() == "hello@acme.example"


def test_developer_mode_reveals_technical_pages(client, admin_user):
    """Technical pages are 403 until the admin turns developer mode on."""
    client.force_login(admin_user)
    assert client.get("/settings/technical/parameters/").status_code == 403
    client.post("/settings/developer-mode/", {"next": "/settings/"})
    assert get_profile(admin_user).developer_mode is True
    response = client.get("/settings/technical/parameters/")
    assert response.status_code == 200 and "System parameters" in response.text
    home = client.get("/")
    assert "Technical" in home.text


def test_parameters_page_writes_through_the_cache(client, admin_user):
    """Saving a parameter on the page is visible to get_param at once."""
    get_profile(admin_user).developer_mode = True
    admin_user.profile.save()
    client.force_login(admin_user)
    params.get_param("mail.catchall.domain")  # warm the cache
    response = client.post(
        "/settings/technical/parameters/",
        {"key": "mail.catchall.domain", "value": "x.test"},
    )
    assert response.status_code == 302
    assert params.catchall_domain() == "x.test"
    response = client.post(
        "/settings/technical/parameters/", {"key": "two words", "value": ""}
    )
    assert response.status_code == 400 and "A key is one word" in response.text


def test_user_chooses_notification_preference(client, alice):
    """Preferences store email vs inbox; developer mode is not offered to non-admins."""
    client.force_login(alice)
    page = client.get("/preferences/")
    assert "developer_mode" not in page.text
    client.post("/preferences/", {"notify_by": "email"})
    assert get_profile(alice).notify_by == "email"


def test_error_pages_explain_in_the_app_layout(client, alice, settings):
    """403 says why (with the app's top bar), 404 stays friendly."""
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get("/settings/")
    assert response.status_code == 403
    assert "Only administrators may open Settings." in response.text
    assert 'class="topbar"' in response.text
    response = client.get("/helpdesk/tickets/999999/")
    assert response.status_code == 404 and "Nothing here" in response.text
