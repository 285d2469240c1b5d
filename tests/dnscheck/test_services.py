"""Sending-domain services: stored results, history, DKIM verification, re-checks."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from dnscheck import notify, services
from dnscheck.errors import DomainAlreadyAdded, InvalidDomainName
from dnscheck.models import DomainCheck, SendingDomain
from feed.models import Notification
from tests.servers.dns_fixtures import DKIM_SELECTOR, publish_domain

pytestmark = pytest.mark.django_db


def test_add_domain_checks_it_and_stores_history(dns_server, dkim_key, admin_user):
    """Adding a domain runs a check: statuses, report and a history row are stored."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name=" Company.COM. ", user=admin_user)
    assert domain.name == "company.com"
    assert domain.statuses() == {"spf": "valid", "dkim": "valid", "dmarc": "valid"}
    assert domain.is_dkim_verified
    assert domain.last_success_at is not None
    assert domain.last_report["spf"]["found"] == [
        "v=spf1 mx include:_spf.knowlix.com -all"
    ]
    check = domain.checks.get()
    assert check.trigger == DomainCheck.Trigger.CREATED
    assert check.report["dkim"]["status"] == "valid"


def test_add_domain_refuses_bad_and_duplicate_names(dns_server, dkim_key):
    """Not a host name, or already added: refused with a message."""
    with pytest.raises(InvalidDomainName):
        services.add_sending_domain(name="not a domain")
    services.add_sending_domain(name="company.com")
    with pytest.raises(DomainAlreadyAdded):
        services.add_sending_domain(name="COMPANY.com")


def test_broken_records_are_stored_with_reason(dns_server, dkim_key):
    """Missing records leave the statuses and a readable last_error."""
    dns_server.set_txt("company.com", "v=spf1 mx -all")
    domain = services.add_sending_domain(name="company.com")
    assert domain.statuses() == {"spf": "wrong", "dkim": "missing", "dmarc": "missing"}
    assert not domain.is_dkim_verified
    assert "SPF wrong: The record does not include" in domain.last_error
    assert domain.last_error_at is not None


def test_dns_failure_keeps_dkim_verification(dns_server, dkim_key):
    """A check that cannot reach DNS does not stop DKIM signing."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com")
    dns_server.silence(f"{DKIM_SELECTOR}._domainkey.company.com")
    services.check_sending_domain(domain=domain, trigger=DomainCheck.Trigger.MANUAL)
    domain.refresh_from_db()
    assert domain.dkim_status == "unknown"
    assert domain.is_dkim_verified
    dns_server.reset()
    dns_server.set_txt("company.com", "v=spf1 -all")
    services.check_sending_domain(domain=domain, trigger=DomainCheck.Trigger.MANUAL)
    domain.refresh_from_db()
    assert domain.dkim_status == "missing"
    assert not domain.is_dkim_verified


def test_daily_recheck_notifies_admins_when_valid_domain_breaks(
    dns_server, dkim_key, admin_user, staff_admin, alice
):
    """A valid domain whose DKIM record vanished: every admin gets an inbox notification."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com", user=admin_user)
    dns_server.remove(f"{DKIM_SELECTOR}._domainkey.company.com")
    assert notify.recheck_all_domains() == 1
    check = domain.checks.first()
    assert check.trigger == DomainCheck.Trigger.SCHEDULED
    assert check.broke
    notes = Notification.objects.select_related("message")
    assert {n.user for n in notes} == {admin_user, staff_admin}
    message = notes.first().message
    assert message.subject == "Sending domain company.com: DKIM no longer valid"
    assert message.content_object == domain
    assert "/settings/domains/" in message.body_html
    assert not notes.filter(user=alice).exists()


def test_recheck_does_not_notify_again_or_for_dns_errors(
    dns_server, dkim_key, admin_user
):
    """Still broken, or only unreachable: no new notification."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    dns_server.servfail("_dmarc.company.com")
    notify.recheck_all_domains()
    assert Notification.objects.count() == 0
    dns_server.reset()
    dns_server.set_txt("company.com", "v=spf1 -all")
    notify.recheck_all_domains()
    notify.recheck_all_domains()
    assert Notification.objects.count() == 1


def test_manual_check_does_not_notify(dns_server, dkim_key, admin_user):
    """The admin who clicks Check now sees the break on the page instead."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com")
    dns_server.remove("_dmarc.company.com")
    services.check_sending_domain(domain=domain, trigger=DomainCheck.Trigger.MANUAL)
    assert domain.checks.first().broke
    assert Notification.objects.count() == 0


def test_checker_reports_a_break_but_posts_no_notice(dns_server, dkim_key, admin_user):
    """The service names what broke; only the layer above tells the admins."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com")
    dns_server.remove(f"{DKIM_SELECTOR}._domainkey.company.com")
    recorded = services.check_sending_domain(
        domain=domain, trigger=DomainCheck.Trigger.SCHEDULED
    )
    assert recorded.broken == ["dkim"]
    assert recorded.check.broke
    assert Notification.objects.count() == 0


def test_check_dns_command_notifies_admins_of_a_break(dns_server, dkim_key, admin_user):
    """``manage.py check_dns`` on a saved domain that broke tells the admins once."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    dns_server.set_txt("company.com", "v=spf1 +all")
    call_command("check_dns", "company.com", "--json")
    call_command("check_dns", "company.com", "--json")
    notes = Notification.objects.select_related("message")
    assert [n.user for n in notes] == [admin_user]
    assert notes[0].message.subject == "Sending domain company.com: SPF no longer valid"


def test_recheck_task_runs_the_service(dns_server, dkim_key):
    """The beat task re-checks every domain."""
    from dnscheck.tasks import recheck_all_domains

    publish_domain(dns_server, "company.com")
    SendingDomain.objects.create(name="company.com")
    assert recheck_all_domains.apply().get() == 1
    assert SendingDomain.objects.get().is_valid


def test_stored_report_keeps_the_added_fields(dns_server, dkim_key):
    """The history row and last_report keep each mechanism's added figures, and
    the stored report reads back with them."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com")
    assert domain.last_report["spf"]["dns_lookups"] == 2
    assert domain.checks.get().report["dmarc"]["organizational_domain"] == (
        "company.com"
    )
    domain.refresh_from_db()
    report = domain.report
    assert report.dkim.extra == {"cname_chain": ["knowlix._domainkey.knowlix.com."]}
    assert report.to_dict() == domain.last_report
