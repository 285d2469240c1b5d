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


def test_cname_chain_through_two_aliases_is_valid(run_check, dns_server):
    """A CNAME that reaches Knowlix's key through two aliases is valid; the aliases
    are named in what was found and in the advice."""
    publish_domain(dns_server, "company.com")
    dns_server.set_cname(NAME, "dkim.company.com.")
    dns_server.set_cname("dkim.company.com", "knowlix.dkim.dnshost.net.")
    dns_server.set_cname("knowlix.dkim.dnshost.net", DKIM_TARGET)
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.VALID
    assert dkim.extra["cname_chain"] == [
        "dkim.company.com.",
        "knowlix.dkim.dnshost.net.",
        DKIM_TARGET,
    ]
    assert dkim.found[:3] == [
        "CNAME dkim.company.com.",
        "dkim.company.com. CNAME knowlix.dkim.dnshost.net.",
        f"knowlix.dkim.dnshost.net. CNAME {DKIM_TARGET}",
    ]
    assert dkim.problems == [
        f"The CNAME reaches {DKIM_TARGET} through dkim.company.com., "
        "knowlix.dkim.dnshost.net.: receivers follow the chain, so it works while "
        f"those aliases keep pointing there; a CNAME straight to {DKIM_TARGET} "
        "does not depend on them."
    ]


def test_cname_chain_of_one_alias_still_checks_the_key(run_check, dns_server):
    """Through one alias the key at the target is still compared with ours."""
    publish_domain(dns_server, "company.com")
    dns_server.set_cname(NAME, "dkim.company.com.")
    dns_server.set_cname("dkim.company.com", DKIM_TARGET)
    dkim = run_check("company.com", public_key=make_test_key(1024).public_b64).dkim
    assert dkim.status == Status.WRONG
    assert "does not match" in dkim.problems[0]
    assert "through dkim.company.com.: " in dkim.problems[1]


def test_cname_chain_loop_is_wrong(run_check, dns_server):
    """Aliases that point at each other are a loop, reported with the chain."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    dns_server.set_cname(NAME, "a.company.com.")
    dns_server.set_cname("a.company.com", "b.company.com.")
    dns_server.set_cname("b.company.com", "a.company.com.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert dkim.problems == [
        f"The CNAME chain loops ({NAME}. → a.company.com. → b.company.com. → "
        "a.company.com.): receivers never reach a key. Point "
        f"{NAME}. straight to {DKIM_TARGET}."
    ]
    assert dns_server.queries.count(("a.company.com.", "CNAME")) == 1


def test_cname_back_to_itself_is_a_loop(run_check, dns_server):
    """An alias that leads back to the selector name is a loop too."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    dns_server.set_cname(NAME, "a.company.com.")
    dns_server.set_cname("a.company.com", f"{NAME}.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "loops" in dkim.problems[0]


def test_cname_chain_that_ends_elsewhere_is_wrong(run_check, dns_server):
    """A chain whose last name is not Knowlix's key names where it ends."""
    dns_server.set_cname(NAME, "dkim.company.com.")
    dns_server.set_cname("dkim.company.com", "s1._domainkey.othermailer.net.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert dkim.problems[0].startswith(
        "The CNAME chain ends at s1._domainkey.othermailer.net. ("
    )


def test_too_long_cname_chain_is_wrong(run_check, dns_server):
    """More aliases than resolvers follow: wrong, and the walk stops."""
    dns_server.set_cname(NAME, "hop0.company.com.")
    for i in range(12):
        dns_server.set_cname(f"hop{i}.company.com", f"hop{i + 1}.company.com.")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.WRONG
    assert "has more than 8 aliases" in dkim.problems[0]
    assert ("hop9.company.com.", "CNAME") not in dns_server.queries


def test_cname_chain_hop_that_times_out_is_could_not_check(run_check, dns_server):
    """An alias whose lookup gets no answer leaves DKIM unknown, not wrong."""
    dns_server.set_cname(NAME, "dkim.slow.net.")
    dns_server.silence("dkim.slow.net")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.UNKNOWN
    assert "time-out" in dkim.problems[0]


def test_subdomain_under_two_label_suffix(run_check, dns_server):
    """shop.example.co.uk is a subdomain of example.co.uk (the Public Suffix List),
    while example.co.uk itself is not a subdomain of co.uk."""
    dns_server.set_txt("shop.example.co.uk", "v=spf1 -all")
    dkim = run_check("shop.example.co.uk").dkim
    assert dkim.problems[1] == (
        "shop.example.co.uk is a subdomain and needs its own record: in the "
        "example.co.uk zone the host is knowlix._domainkey.shop."
    )
    dns_server.set_txt("example.co.uk", "v=spf1 -all")
    assert len(run_check("example.co.uk").dkim.problems) == 1
