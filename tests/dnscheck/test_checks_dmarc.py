"""DMARC checks against the loopback DNS server."""

from __future__ import annotations

from dnscheck.dmarc import parse_dmarc
from dnscheck.domains import organizational_domain
from dnscheck.report import Status
from tests.servers.dns_fixtures import publish_domain


def test_reject_policy_is_valid_and_explains_alignment(run_check, dns_server):
    """p=reject with a valid DKIM record is valid; alignment is explained."""
    publish_domain(dns_server, "company.com")
    dmarc = run_check("company.com").dmarc
    assert dmarc.status == Status.VALID
    assert dmarc.found == ["v=DMARC1; p=reject; rua=mailto:dmarc@company.com"]
    assert any("d=company.com" in p and "aligns" in p for p in dmarc.problems)


def test_missing_dmarc_proposes_p_none(run_check, dns_server):
    """No record here nor above is missing, with the p=none proposal."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    dmarc = run_check("company.com").dmarc
    assert dmarc.status == Status.MISSING
    assert dmarc.expected == "v=DMARC1; p=none; rua=mailto:postmaster@company.com"
    assert dmarc.record_name == "_dmarc.company.com."


def test_p_none_is_valid_with_advice(run_check, dns_server):
    """p=none is valid, with the advice to move to quarantine or reject."""
    publish_domain(dns_server, "company.com", dmarc="v=DMARC1; p=none")
    dmarc = run_check("company.com").dmarc
    assert dmarc.status == Status.VALID
    assert any("p=quarantine" in p and "p=reject" in p for p in dmarc.problems)


def test_subdomain_inherits_organizational_policy(run_check, dns_server):
    """A subdomain without its own record reports the parent's sp= policy."""
    publish_domain(dns_server, "company.com", dmarc="v=DMARC1; p=reject; sp=quarantine")
    dns_server.set_txt("marketing.company.com", "v=spf1 include:_spf.knowlix.com -all")
    dmarc = run_check("marketing.company.com").dmarc
    assert dmarc.status == Status.VALID
    assert dmarc.found == ["_dmarc.company.com: v=DMARC1; p=reject; sp=quarantine"]
    assert any("company.com applies (sp=quarantine)" in p for p in dmarc.problems)
    assert any("fails DMARC and goes to spam" in p for p in dmarc.problems)
    # Publishing its own record keeps the policy that applies today.
    assert dmarc.expected == (
        "v=DMARC1; p=quarantine; rua=mailto:postmaster@marketing.company.com"
    )


def test_subdomain_own_record_wins(run_check, dns_server):
    """A subdomain's own record is the one that applies."""
    publish_domain(dns_server, "company.com")
    publish_domain(dns_server, "news.company.com", dmarc="v=DMARC1; p=quarantine")
    dmarc = run_check("news.company.com").dmarc
    assert dmarc.status == Status.VALID
    assert dmarc.found == ["v=DMARC1; p=quarantine"]


def test_bad_syntax_is_wrong(run_check, dns_server):
    """Bad tags, policy, pct and rua are each reported."""
    publish_domain(
        dns_server,
        "company.com",
        dmarc="v=DMARC1; p=block; pct=150; rua=dmarc@company.com; polcy=reject",
    )
    dmarc = run_check("company.com").dmarc
    assert dmarc.status == Status.WRONG
    text = " ".join(dmarc.problems)
    assert '"p=block"' in text
    assert '"pct=150"' in text
    assert '"dmarc@company.com"' in text
    assert '"polcy=reject"' in text
    assert dmarc.expected == "v=DMARC1; p=none; rua=mailto:postmaster@company.com"


def test_two_dmarc_records_are_wrong(run_check, dns_server):
    """Two DMARC records make receivers ignore DMARC."""
    publish_domain(dns_server, "company.com")
    dns_server.add_txt("_dmarc.company.com", "v=DMARC1; p=none")
    assert run_check("company.com").dmarc.status == Status.WRONG


def test_parse_accepts_full_record():
    """Every RFC 7489 tag with valid values parses without problems."""
    tags, problems = parse_dmarc(
        "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; "
        "rua=mailto:a@x.com,mailto:b@y.org!10m; ruf=mailto:f@x.com; fo=1:d; "
        "rf=afrf; ri=86400;"
    )
    assert problems == []
    assert tags["adkim"] == "s"


def test_parse_requires_v_first_and_p():
    """v=DMARC1 must come first and p= is required."""
    _, problems = parse_dmarc("p=none; v=DMARC1")
    assert any("start with" in p for p in problems)
    _, problems = parse_dmarc("v=DMARC1; rua=mailto:a@x.com")
    assert any("p= is missing" in p for p in problems)


def test_subdomain_under_two_label_suffix_inherits_from_registered_domain(
    run_check, dns_server
):
    """shop.example.co.uk inherits example.co.uk's policy; co.uk, a public suffix,
    is never asked even when it publishes a record."""
    publish_domain(dns_server, "example.co.uk", dmarc="v=DMARC1; p=quarantine")
    dns_server.set_txt("_dmarc.co.uk", "v=DMARC1; p=reject")
    dns_server.set_txt("shop.example.co.uk", "v=spf1 include:_spf.knowlix.com -all")
    dmarc = run_check("shop.example.co.uk").dmarc
    assert dmarc.status == Status.VALID
    assert dmarc.found == ["_dmarc.example.co.uk: v=DMARC1; p=quarantine"]
    assert dmarc.extra == {
        "organizational_domain": "example.co.uk",
        "policy_domain": "example.co.uk",
    }
    assert any(
        "organizational domain example.co.uk applies (p=quarantine)" in p
        for p in dmarc.problems
    )
    assert ("_dmarc.co.uk.", "TXT") not in dns_server.queries


def test_registered_domain_under_two_label_suffix_does_not_inherit(
    run_check, dns_server
):
    """example.co.uk is its own organizational domain: without a record it is
    missing, whatever _dmarc.co.uk says."""
    dns_server.set_txt("example.co.uk", "v=spf1 include:_spf.knowlix.com -all")
    dns_server.set_txt("_dmarc.co.uk", "v=DMARC1; p=reject")
    dmarc = run_check("example.co.uk").dmarc
    assert dmarc.status == Status.MISSING
    assert dmarc.extra["organizational_domain"] == "example.co.uk"
    assert dmarc.extra["policy_domain"] is None
    assert dmarc.problems[0].startswith("No DMARC record at _dmarc.example.co.uk.:")
    assert ("_dmarc.co.uk.", "TXT") not in dns_server.queries


def test_deep_subdomain_asks_only_the_organizational_domain(run_check, dns_server):
    """a.b.company.com falls back to company.com directly (RFC 7489 §6.6.3): the
    names in between are not asked."""
    publish_domain(dns_server, "company.com", dmarc="v=DMARC1; p=reject")
    dns_server.set_txt("_dmarc.b.company.com", "v=DMARC1; p=none")
    dns_server.set_txt("a.b.company.com", "v=spf1 include:_spf.knowlix.com -all")
    dmarc = run_check("a.b.company.com").dmarc
    assert dmarc.found == ["_dmarc.company.com: v=DMARC1; p=reject"]
    assert ("_dmarc.b.company.com.", "TXT") not in dns_server.queries


def test_missing_everywhere_names_the_organizational_domain(run_check, dns_server):
    """A subdomain with no record, nor one at its organizational domain, is missing
    and the problem says where the inherited record would be."""
    dns_server.set_txt("shop.example.co.uk", "v=spf1 include:_spf.knowlix.com -all")
    dmarc = run_check("shop.example.co.uk").dmarc
    assert dmarc.status == Status.MISSING
    assert dmarc.problems[0].startswith(
        "No DMARC record at _dmarc.shop.example.co.uk., nor at _dmarc.example.co.uk "
        "(the organizational domain, whose policy would apply): publish this one"
    )


def test_organizational_domain_from_the_public_suffix_list():
    """The bundled list: multi-label and private suffixes, unknown TLDs, a suffix
    alone, any case and trailing dot."""
    assert organizational_domain("Shop.Example.CO.UK.") == "example.co.uk"
    assert organizational_domain("a.b.company.com") == "company.com"
    assert organizational_domain("www.city.kawasaki.jp") == "city.kawasaki.jp"
    assert organizational_domain("docs.customer.github.io") == "customer.github.io"
    assert organizational_domain("mail.company.test") == "company.test"
    assert organizational_domain("co.uk") == "co.uk"
