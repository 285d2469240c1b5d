"""SPF checks against the loopback DNS server."""

from __future__ import annotations

from dnscheck.report import Status
from dnscheck.spf import merge_include, parse_term
from tests.servers.dns_fixtures import publish_domain

INCLUDE = "include:_spf.knowlix.com"


def test_valid_spf_is_valid(run_check, dns_server):
    """A single record that includes Knowlix and ends in -all is valid."""
    publish_domain(dns_server, "company.com")
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.found == [f"v=spf1 mx {INCLUDE} -all"]
    assert spf.expected == f"v=spf1 mx {INCLUDE} -all"


def test_missing_spf_proposes_default_record(run_check, dns_server):
    """Only non-SPF TXT records: missing, with the default proposal."""
    dns_server.set_txt("company.com", "google-site-verification=abc")
    spf = run_check("company.com").spf
    assert spf.status == Status.MISSING
    assert spf.found == []
    assert spf.expected == f"v=spf1 {INCLUDE} ~all"
    assert spf.record_name == "company.com."


def test_record_without_include_gets_merged_proposal(run_check, dns_server):
    """An existing record without the include is wrong; the fix keeps every term."""
    dns_server.set_txt("company.com", "v=spf1 ip4:198.51.100.7 mx ~all")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert spf.expected == f"v=spf1 ip4:198.51.100.7 mx {INCLUDE} ~all"
    assert any("does not include Knowlix" in p for p in spf.problems)


def test_two_spf_records_are_wrong(run_check, dns_server):
    """Two v=spf1 records are a permanent error: wrong, with one merged record."""
    dns_server.set_txt("company.com", "v=spf1 mx -all", "v=spf1 ip4:192.0.2.9 ~all")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert len(spf.found) == 2
    assert "permanent error" in spf.problems[0]
    assert spf.expected == f"v=spf1 mx ip4:192.0.2.9 {INCLUDE} -all"


def test_plus_all_is_wrong(run_check, dns_server):
    """+all authorises the whole internet: wrong, and the proposal uses ~all."""
    dns_server.set_txt("company.com", f"v=spf1 {INCLUDE} +all")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert any('"+all"' in p for p in spf.problems)
    assert spf.expected == f"v=spf1 {INCLUDE} ~all"


def test_syntax_error_quotes_the_term(run_check, dns_server):
    """A malformed term makes the record wrong and the problem quotes it."""
    dns_server.set_txt(
        "company.com", f"v=spf1 ip4:300.1.2.3 inclde:x.com {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert any('"ip4:300.1.2.3"' in p for p in spf.problems)
    assert any('"inclde:x.com"' in p for p in spf.problems)


def test_more_than_ten_lookups_after_expanding_includes(run_check, dns_server):
    """Lookups are counted through includes: 11 of them make the record wrong."""
    nested = " ".join(f"a:host{i}.example.net" for i in range(8))
    dns_server.set_txt("spf.vendor.net", f"v=spf1 {nested} -all")
    dns_server.set_txt(
        "company.com", f"v=spf1 mx include:spf.vendor.net {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert any("more than 10 DNS lookups" in p for p in spf.problems)
    assert ("spf.vendor.net.", "TXT") in dns_server.queries


def test_ten_lookups_is_still_valid(run_check, dns_server):
    """Exactly ten DNS-querying terms is within the limit."""
    nested = " ".join(f"a:host{i}.example.net" for i in range(7))
    dns_server.set_txt("spf.vendor.net", f"v=spf1 {nested} -all")
    dns_server.set_txt("company.com", f"v=spf1 include:spf.vendor.net {INCLUDE} -all")
    assert run_check("company.com").spf.status == Status.VALID


def test_adding_include_over_the_limit_is_explained(run_check, dns_server):
    """When the merged record would pass ten lookups, the admin is told so."""
    terms = " ".join(f"a:h{i}.example.net" for i in range(10))
    dns_server.set_txt("company.com", f"v=spf1 {terms} -all")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert any("would need 11 DNS lookups" in p for p in spf.problems)


def test_include_of_domain_without_spf_is_wrong(run_check, dns_server):
    """An include whose target publishes no SPF record is a permanent error."""
    dns_server.set_txt("company.com", f"v=spf1 include:gone.example.org {INCLUDE} -all")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert any("include:gone.example.org" in p for p in spf.problems)


def test_include_that_times_out_is_could_not_check(run_check, dns_server):
    """An include target whose nameserver never answers leaves SPF unknown."""
    dns_server.set_txt("company.com", f"v=spf1 include:slow.example.org {INCLUDE} -all")
    dns_server.silence("slow.example.org")
    spf = run_check("company.com").spf
    assert spf.status == Status.UNKNOWN
    assert any("time-out" in p for p in spf.problems)


def test_merge_inserts_include_before_all_and_keeps_the_rest():
    """The include goes right before the all term; modifiers stay."""
    merged = merge_include(
        ["v=spf1 a mx ip6:2001:db8::/32 ?all exp=why.company.com"], "_spf.k.com"
    )
    assert (
        merged
        == "v=spf1 a mx ip6:2001:db8::/32 include:_spf.k.com ?all exp=why.company.com"
    )


def test_merge_without_all_goes_before_redirect():
    """With no all term the include goes before redirect=."""
    assert merge_include(["v=spf1 mx redirect=_spf.company.com"], "_spf.k.com") == (
        "v=spf1 mx include:_spf.k.com redirect=_spf.company.com"
    )


def test_term_syntax():
    """Term parsing accepts the RFC 7208 forms and rejects the broken ones."""
    good = [
        "a",
        "a:mail.example.com/24",
        "mx//64",
        "-all",
        "~ip4:192.0.2.0/24",
        "ip6:2001:db8::1",
        "exists:%{i}.spf.example.com",
        "redirect=_spf.x.com",
        "unknown-mod=whatever",
    ]
    bad = ["ip4:192.0.2.0/33", "include:", "all:x", "a/40", "foo", "redirect="]
    assert [t for t in good if parse_term(t).error] == []
    assert [t for t in bad if not parse_term(t).error] == []
