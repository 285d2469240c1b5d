"""SPF checks against the loopback DNS server."""

from __future__ import annotations

from dnscheck.report import Status
from dnscheck.spf import expand_macros, merge_include, parse_term, sender_macros
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
    for i in range(7):
        dns_server.add(f"host{i}.example.net", "A", f"198.51.100.{i + 1}")
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


def test_two_void_lookups_are_still_valid(run_check, dns_server):
    """A term on a name that does not exist and one on a name without the record
    asked for are two void lookups: within the limit of two."""
    dns_server.set_txt("nomx.company.com", "not an mx")
    dns_server.set_txt(
        "company.com", f"v=spf1 a:gone.example.net mx:nomx.company.com {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["void_lookups"] == 2
    assert spf.extra["dns_lookups"] == 3
    assert ("gone.example.net.", "A") in dns_server.queries
    assert ("nomx.company.com.", "MX") in dns_server.queries


def test_three_void_lookups_are_a_permanent_error(run_check, dns_server):
    """A third void lookup makes receivers stop with permerror: wrong, and the
    problem names the three terms."""
    dns_server.set_txt(
        "company.com",
        f"v=spf1 a:gone.example.net mx:gone.example.net exists:x.gone.example.net "
        f"{INCLUDE} -all",
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert spf.extra["void_lookups"] == 3
    [problem] = [p for p in spf.problems if "void" in p]
    assert problem.startswith("3 terms look up names that do not exist")
    assert '"a:gone.example.net", "mx:gone.example.net", "exists:x.gone.' in problem
    assert "permerror" in problem


def test_void_lookups_are_counted_inside_includes(run_check, dns_server):
    """A bare a or mx in an included record names the included domain; an include
    of a name without records is void too."""
    dns_server.set_txt("spf.vendor.net", "v=spf1 a mx -all")
    dns_server.set_txt(
        "company.com",
        f"v=spf1 include:spf.vendor.net include:gone.example.org {INCLUDE} -all",
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    assert spf.extra["void_lookups"] == 3
    assert ("spf.vendor.net.", "A") in dns_server.queries
    assert ("spf.vendor.net.", "AAAA") in dns_server.queries
    assert ("spf.vendor.net.", "MX") in dns_server.queries
    assert ("company.com.", "A") not in dns_server.queries
    assert any('"include:gone.example.org"' in p and "void" in p for p in spf.problems)


def test_ipv6_only_host_and_real_records_are_not_void(run_check, dns_server):
    """An a term on an IPv6-only host, an mx with an MX record and an exists that
    finds an address are not void."""
    dns_server.add("v6.company.com", "AAAA", "2001:db8::25")
    dns_server.add("company.com", "MX", "mx.company.com")
    dns_server.add("ok.company.com", "A", "127.0.0.2")
    dns_server.set_txt(
        "company.com",
        f"v=spf1 a:v6.company.com mx exists:ok.company.com {INCLUDE} -all",
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["void_lookups"] == 0


def test_sender_macro_is_reported_not_evaluated(run_check, dns_server):
    """exists:%{i}… depends on the sending server: no query, no verdict on it, and
    the admin is told which term uses which macro."""
    dns_server.set_txt(
        "company.com", f"v=spf1 exists:%{{ir}}.%{{v}}._spf.company.com {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["macro_terms"] == ["exists:%{ir}.%{v}._spf.company.com"]
    assert spf.extra["dns_lookups"] == 2
    [note] = [p for p in spf.problems if "macro" in p]
    assert note.startswith('"exists:%{ir}.%{v}._spf.company.com" uses the macros ')
    assert "%{ir} (the sending server's IP address)" in note
    assert "depends on the sender" in note
    assert not any("_spf.company.com" in name for name, _ in dns_server.queries)


def test_include_with_sender_macro_is_counted_once_and_not_expanded(
    run_check, dns_server
):
    """include:%{l}… cannot be expanded: one lookup, and the note says its own
    lookups and outcome depend on the sender."""
    dns_server.set_txt(
        "company.com", f"v=spf1 include:%{{l}}.users.company.com {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["dns_lookups"] == 2
    [note] = [p for p in spf.problems if "macro" in p]
    assert "%{l} (the local part of the sender's address)" in note
    assert "cannot expand it" in note


def test_domain_macro_is_expanded(run_check, dns_server):
    """%{d} is the domain being checked, known without a sender: it is evaluated."""
    dns_server.add("mail.company.com", "A", "198.51.100.25")
    dns_server.set_txt("company.com", f"v=spf1 a:mail.%{{d}} {INCLUDE} -all")
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["macro_terms"] == []
    assert spf.extra["void_lookups"] == 0
    assert ("mail.company.com.", "A") in dns_server.queries


def test_include_loop_is_a_permanent_error(run_check, dns_server):
    """An include that leads back to a record being evaluated is reported with the
    chain, and not followed round again."""
    dns_server.set_txt("company.com", f"v=spf1 include:spf.company.com {INCLUDE} -all")
    dns_server.set_txt("spf.company.com", "v=spf1 redirect=company.com")
    spf = run_check("company.com").spf
    assert spf.status == Status.WRONG
    [problem] = [p for p in spf.problems if "loops" in p]
    assert "(company.com → spf.company.com → company.com)" in problem
    assert dns_server.queries.count(("spf.company.com.", "TXT")) == 1


def test_same_include_on_two_paths_is_not_a_loop(run_check, dns_server):
    """Two includes that both include a third domain: counted twice, no loop."""
    dns_server.set_txt("common.net", "v=spf1 ip4:192.0.2.1 -all")
    dns_server.set_txt("one.net", "v=spf1 include:common.net -all")
    dns_server.set_txt("two.net", "v=spf1 include:common.net -all")
    dns_server.set_txt(
        "company.com", f"v=spf1 include:one.net include:two.net {INCLUDE} -all"
    )
    spf = run_check("company.com").spf
    assert spf.status == Status.VALID
    assert spf.extra["dns_lookups"] == 5


def test_macro_expansion():
    """%{d} with digits, reversal and delimiters, and the three escapes (§7.3)."""
    assert expand_macros("%{d2}._spf.%{dr}", "mail.company.com.") == (
        "company.com._spf.com.company.mail"
    )
    assert expand_macros("%{dr-}.x%%y%_z%-", "a-b.c") == "b.c.a.x%y z%20"
    assert sender_macros("%{d}.%{i}.%{ir}.%%") == ["%{i}", "%{ir}"]


def test_macro_syntax():
    """Unknown letters, exp-only letters, a zero part count and a stray % are errors."""
    good = ["exists:%{ir}.%{v}._spf.%{d2}", "a:%{o}", "include:%{l1r+-}.x.com"]
    bad = [
        "exists:%{x}.example.com",
        "a:%{c}.example.com",
        "exists:%{d0}.example.com",
        "include:100%.example.com",
        "redirect=%{i",
    ]
    assert [t for t in good if parse_term(t).error] == []
    assert [t for t in bad if not parse_term(t).error] == []
