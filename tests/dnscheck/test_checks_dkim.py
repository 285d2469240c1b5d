"""DKIM delegation checks against the loopback DNS server."""

from __future__ import annotations

from dnscheck.report import Status
from tests.servers.dns_fixtures import DKIM_TARGET, make_test_key, publish_domain

NAME = "knowlix._domainkey.company.com"


def test_cname_to_knowlix_key_is_valid(run_check, dns_server):
    """The CNAME reaches Knowlix's published key, which matches the signing key."""
    publish_domain(dns_server, "company.com")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.VALID
    assert dkim.found[0] == f"CNAME {DKIM_TARGET}"
    assert dkim.expected == DKIM_TARGET
    assert dkim.record_name == f"{NAME}."
    assert dkim.record_type == "CNAME"


def test_missing_cname(run_check, dns_server):
    """No record at the selector name is missing, with the CNAME to publish."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.MISSING
    assert dkim.expected == DKIM_TARGET


def test_cname_pointing_elsewhere(run_check, dns_server):
    """A CNAME to another provider's key is wrong and names where it points."""
    dns_server.set_cname(NAME, "s1._domainkey.othermailer.net.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "s1._domainkey.othermailer.net." in dkim.problems[0]


def test_doubled_domain_in_name_is_explained(run_check, dns_server):
    """The record created at <name>.company.com.company.com is detected."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    dns_server.set_cname(f"{NAME}.company.com", DKIM_TARGET)
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "knowlix._domainkey.company.com.company.com" in dkim.problems[0]
    assert "knowlix._domainkey)" in dkim.problems[0]


def test_doubled_domain_in_target_is_explained(run_check, dns_server):
    """A target missing its trailing dot (provider appended the domain) is explained."""
    dns_server.set_cname(NAME, "knowlix._domainkey.knowlix.com.company.com.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "trailing dot" in dkim.problems[0]


def test_txt_published_instead_of_cname(run_check, dns_server, knowlix_dns):
    """Copying the key as a TXT record is wrong: it must be the CNAME."""
    dns_server.set_txt(NAME, knowlix_dns.record)
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert dkim.found == [f'TXT "{knowlix_dns.record}"']
    assert "instead of the CNAME" in dkim.problems[0]


def test_key_that_does_not_match_knowlix_key(run_check, dns_server):
    """A valid key at the target that is not the signing key is wrong."""
    publish_domain(dns_server, "company.com")
    dkim = run_check("company.com", public_key=make_test_key(1024).public_b64).dkim
    assert dkim.status == Status.WRONG
    assert "does not match" in dkim.problems[0]


def test_invalid_key_record_at_target(run_check, dns_server):
    """A target record whose p= is not a key is wrong."""
    publish_domain(dns_server, "company.com")
    dns_server.set_txt(DKIM_TARGET, "v=DKIM1; k=rsa; p=bm90IGEga2V5")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "not valid" in dkim.problems[0]


def test_revoked_key_at_target(run_check, dns_server):
    """An empty p= (revoked key) is wrong."""
    publish_domain(dns_server, "company.com")
    dns_server.set_txt(DKIM_TARGET, "v=DKIM1; p=")
    assert "revoked" in run_check("company.com").dkim.problems[0]


def test_no_signing_key_yet(run_check, dns_server):
    """Without a generated signing key the check says to run dkim_keygen."""
    publish_domain(dns_server, "company.com")
    dkim = run_check("company.com", public_key=None).dkim
    assert dkim.status == Status.WRONG
    assert "dkim_keygen" in dkim.problems[0]


def test_subdomain_needs_its_own_record(run_check, dns_server):
    """A subdomain is checked at its own selector name, with the host to enter."""
    publish_domain(dns_server, "company.com")
    dns_server.set_txt("marketing.company.com", "v=spf1 include:_spf.knowlix.com -all")
    dkim = run_check("marketing.company.com").dkim
    assert dkim.status == Status.MISSING
    assert dkim.record_name == "knowlix._domainkey.marketing.company.com."
    assert any("knowlix._domainkey.marketing." in p for p in dkim.problems)
    dns_server.set_cname("knowlix._domainkey.marketing.company.com", DKIM_TARGET)
    assert run_check("marketing.company.com").dkim.status == Status.VALID
