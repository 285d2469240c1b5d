"""Browser: add a sending domain, read what to publish, fix the zone, Check now."""

import pytest

from dnscheck.models import SendingDomain
from tests.servers.dns_fixtures import DKIM_TARGET, publish_domain

pytestmark = pytest.mark.browser


def test_add_domain_fix_zone_and_check_now(
    page, login, admin_user, dns_server, dkim_key, settings
):
    """Three statuses and records to publish, then all valid after the fix."""
    dns_server.set_txt("company.com", "v=spf1 mx -all")
    login(admin_user)
    page.click("summary:has-text('Settings')")
    page.click("text=General Settings")
    page.click("text=Sending domains (SPF, DKIM, DMARC)")
    page.fill("input[name=name]", "company.com")
    page.click("button:has-text('Add and check')")
    page.wait_for_selector("h1:has-text('company.com')")
    assert page.inner_text("#status-spf") == "Wrong"
    assert page.inner_text("#status-dkim") == "Missing"
    assert page.inner_text("#status-dmarc") == "Missing"
    assert page.inner_text("#expected-spf") == "v=spf1 mx include:_spf.knowlix.com -all"
    assert page.inner_text("#expected-dkim") == DKIM_TARGET
    assert page.inner_text("#name-dkim") == "knowlix._domainkey.company.com."
    assert page.inner_text("#expected-dmarc") == (
        "v=DMARC1; p=none; rua=mailto:postmaster@company.com"
    )
    page.screenshot(
        path=str(settings.VAR_DIR / "screenshot-dns-broken.png"), full_page=True
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy=expected-dkim]")
    page.wait_for_selector("button[data-copy=expected-dkim]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == DKIM_TARGET

    publish_domain(dns_server, "company.com")
    page.click("#check-now")
    page.wait_for_selector("text=SPF, DKIM and DMARC are valid.")
    for name in ("spf", "dkim", "dmarc"):
        assert page.inner_text(f"#status-{name}") == "Valid"
    assert page.locator("#history tbody tr").count() == 2
    assert SendingDomain.objects.get().is_dkim_verified
    page.screenshot(path=str(settings.VAR_DIR / "screenshot-dns.png"), full_page=True)
