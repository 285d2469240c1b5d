"""The break notification shows in an admin's inbox page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dnscheck import notify, services
from tests.servers.dns_fixtures import publish_domain

pytestmark = pytest.mark.django_db


def test_break_notification_is_listed_in_inbox(
    client, admin_user, dns_server, dkim_key
):
    """The admin's inbox lists the notification about the broken domain."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    dns_server.set_txt("company.com", "v=spf1 +all")
    notify.recheck_all_domains()
    client.force_login(admin_user)
    response = client.get(reverse("feed:inbox"))
    assert response.status_code == 200
    assert (
        "Sending domain company.com: SPF no longer valid" in response.content.decode()
    )
