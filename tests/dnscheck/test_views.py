"""The sending-domain pages: admins only, statuses, records to publish, Check now."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dnscheck import services
from dnscheck.models import DomainCheck, SendingDomain
from tests.servers.dns_fixtures import DKIM_TARGET, publish_domain

pytestmark = pytest.mark.django_db


def test_non_admin_gets_403(client, alice):
    """An employee who is not an admin cannot open the page."""
    client.force_login(alice)
    assert client.get(reverse("dnscheck:domain-list")).status_code == 403
    response = client.post(reverse("dnscheck:domain-create"), {"name": "x.com"})
    assert response.status_code == 403
    assert not SendingDomain.objects.exists()


def test_staff_admin_adds_domain_and_sees_records_to_publish(
    client, staff_admin, dns_server, dkim_key
):
    """Adding a domain checks it and shows the three statuses and the records."""
    dns_server.set_txt("company.com", "v=spf1 mx ~all")
    client.force_login(staff_admin)
    response = client.post(
        reverse("dnscheck:domain-create"), {"name": "Company.com"}, follow=True
    )
    domain = SendingDomain.objects.get()
    assert domain.created_by == staff_admin
    assert response.redirect_chain[-1][0] == domain.get_absolute_url()
    html = response.content.decode()
    assert 'id="status-spf">Wrong<' in html
    assert 'id="status-dkim">Missing<' in html
    assert 'id="status-dmarc">Missing<' in html
    assert "v=spf1 mx include:_spf.knowlix.com ~all" in html
    assert DKIM_TARGET in html
    assert "v=DMARC1; p=none; rua=mailto:postmaster@company.com" in html
    assert 'data-copy="expected-dkim"' in html
    assert "Domain added" in html  # the history row


def test_invalid_domain_is_refused_with_message(client, admin_user, dns_server):
    """A name that is not a domain re-renders the form with the error."""
    client.force_login(admin_user)
    response = client.post(reverse("dnscheck:domain-create"), {"name": "not a domain"})
    assert response.status_code == 400
    assert "Enter a domain name" in response.content.decode()
    assert not SendingDomain.objects.exists()


def test_check_now_updates_statuses_and_history(
    client, admin_user, dns_server, dkim_key
):
    """After fixing the zone, Check now turns the statuses valid."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    domain = services.add_sending_domain(name="company.com")
    publish_domain(dns_server, "company.com")
    client.force_login(admin_user)
    response = client.post(
        reverse("dnscheck:domain-check", args=[domain.pk]), follow=True
    )
    html = response.content.decode()
    assert "SPF, DKIM and DMARC are valid" in html
    assert html.count('">Valid</span>') >= 3
    domain.refresh_from_db()
    assert domain.is_valid
    assert list(domain.checks.values_list("trigger", flat=True)) == [
        DomainCheck.Trigger.MANUAL,
        DomainCheck.Trigger.CREATED,
    ]


def test_list_shows_domains_and_knowlix_key(client, admin_user, dns_server, dkim_key):
    """The list has each domain's badges and the key record knowlix.com publishes."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    client.force_login(admin_user)
    html = client.get(reverse("dnscheck:domain-list")).content.decode()
    assert "company.com" in html
    assert f'{DKIM_TARGET} TXT "v=DKIM1; k=rsa; p={dkim_key.public_key}"' in html


def test_delete_domain(client, admin_user, dns_server, dkim_key):
    """Remove deletes the domain and its history."""
    domain = services.add_sending_domain(name="company.com")
    client.force_login(admin_user)
    client.post(reverse("dnscheck:domain-delete", args=[domain.pk]))
    assert not SendingDomain.objects.exists()
    assert not DomainCheck.objects.exists()
