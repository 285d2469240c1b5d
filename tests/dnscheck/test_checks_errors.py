"""DNS failures are "could not check", never "missing", and stay bounded in time."""

from __future__ import annotations

from dnscheck.checks import CheckConfig, check_domain
from dnscheck.lookup import make_resolver
from dnscheck.report import Status
from tests.servers.dns_fixtures import publish_domain


def test_nxdomain_domain_is_could_not_check(run_check, dns_server):
    """A domain that does not exist is unknown for all three, never missing."""
    report = run_check("no-such-company.com")
    assert [r.status for _, r in report.mechanisms()] == [Status.UNKNOWN] * 3
    assert "NXDOMAIN" in report.spf.problems[0]
    assert report.spf.expected.startswith("v=spf1 include:")


def test_servfail_is_could_not_check(run_check, dns_server):
    """SERVFAIL on the domain leaves SPF unknown with the DNS error."""
    publish_domain(dns_server, "company.com")
    dns_server.servfail("company.com")
    spf = run_check("company.com").spf
    assert spf.status == Status.UNKNOWN
    assert "SERVFAIL" in spf.problems[0]


def test_servfail_on_dmarc_name_is_could_not_check(run_check, dns_server):
    """SERVFAIL on _dmarc is unknown, while the other mechanisms are checked."""
    publish_domain(dns_server, "company.com")
    dns_server.servfail("_dmarc.company.com")
    report = run_check("company.com")
    assert report.dmarc.status == Status.UNKNOWN
    assert report.spf.status == Status.VALID
    assert report.dkim.status == Status.VALID


def test_timeout_on_dkim_key_is_could_not_check(run_check, dns_server):
    """A time-out on the DKIM lookup is unknown, not missing."""
    publish_domain(dns_server, "company.com")
    dns_server.silence("knowlix._domainkey.company.com")
    dkim = run_check("company.com").dkim
    assert dkim.status == Status.UNKNOWN
    assert "time-out" in dkim.problems[0]


def test_nameserver_that_never_answers(silent_dns_server, knowlix_dns):
    """Against a silent nameserver every mechanism is unknown and the whole check
    gives up after its time budget (a handful of queries, not one per term)."""
    resolver = make_resolver([silent_dns_server.nameserver], 0.5)
    config = CheckConfig(dkim_public_key=knowlix_dns.public_b64)
    before = len(silent_dns_server.queries)
    report = check_domain("company.com", resolver, config)
    assert [r.status for _, r in report.mechanisms()] == [Status.UNKNOWN] * 3
    assert "time-out" in report.spf.problems[0]
    assert "Could not check" in report.dmarc.problems[0]
    assert len(silent_dns_server.queries) - before <= 3


def test_time_budget_bounds_the_whole_check(silent_dns_server):
    """With a one-query budget only one query is ever sent."""
    resolver = make_resolver([silent_dns_server.nameserver], 0.3)
    before = len(silent_dns_server.queries)
    report = check_domain("company.com", resolver, budget=0.3)
    assert report.dkim.status == Status.UNKNOWN
    assert "ran out of time" in report.dkim.problems[0]
    assert len(silent_dns_server.queries) - before == 1


def test_second_nameserver_answers_when_first_is_dead(
    silent_dns_server, dns_server, knowlix_dns
):
    """With a dead first nameserver each query still reaches the second one."""
    publish_domain(dns_server, "company.com")
    resolver = make_resolver([silent_dns_server.nameserver, dns_server.nameserver], 1.0)
    config = CheckConfig(dkim_public_key=knowlix_dns.public_b64)
    report = check_domain("company.com", resolver, config)
    assert report.is_valid


def test_dead_first_nameserver_costs_one_time_out(
    silent_dns_server, dns_server, knowlix_dns
):
    """Once the second nameserver has answered it is asked first: the dead one gets
    a single query per check, not one per query."""
    publish_domain(dns_server, "company.com")
    resolver = make_resolver([silent_dns_server.nameserver, dns_server.nameserver], 1.0)
    before = len(silent_dns_server.queries)
    check_domain("company.com", resolver, CheckConfig())
    assert len(silent_dns_server.queries) - before == 1
    assert len(dns_server.queries) >= 6


def test_nameserver_entries_are_parsed():
    """host:port, bare IPv4, bare IPv6 and [IPv6]:port are all understood."""
    resolver = make_resolver(["127.0.0.1:10053", "192.0.2.1", "::1", "[::1]:5353"], 2)
    assert [(ns.address, ns.port) for ns in resolver.nameservers] == [
        ("127.0.0.1", 10053),
        ("192.0.2.1", 53),
        ("::1", 53),
        ("::1", 5353),
    ]
