"""``check_dns DOMAIN [--json]`` against the loopback DNS server."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dnscheck import services
from dnscheck.models import DomainCheck
from tests.servers.dns_fixtures import publish_domain

pytestmark = pytest.mark.django_db


def test_json_output_shape(capsys, dns_server, dkim_key):
    """The JSON has domain plus spf/dkim/dmarc with status, found, expected,
    problems first, then each mechanism's added figures."""
    dns_server.set_txt("company.com", "v=spf1 mx -all")
    call_command("check_dns", "company.com", "--json")
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["domain", "spf", "dkim", "dmarc"]
    assert data["domain"] == "company.com"
    for name in ("spf", "dkim", "dmarc"):
        assert list(data[name])[:4] == ["status", "found", "expected", "problems"]
    assert data["spf"] == {
        "status": "wrong",
        "found": ["v=spf1 mx -all"],
        "expected": "v=spf1 mx include:_spf.knowlix.com -all",
        "problems": [
            "The record does not include Knowlix's servers "
            "(include:_spf.knowlix.com): publish the merged record below, which "
            "keeps everything else."
        ],
        "dns_lookups": 1,
        "void_lookups": 1,  # company.com has no MX record
        "macro_terms": [],
    }
    assert data["dkim"]["status"] == "missing"
    assert data["dkim"]["expected"] == "knowlix._domainkey.knowlix.com."
    assert data["dkim"]["cname_chain"] == []
    assert data["dmarc"]["status"] == "missing"
    assert data["dmarc"]["organizational_domain"] == "company.com"
    assert data["dmarc"]["policy_domain"] is None


def test_json_of_a_nonexistent_domain_has_the_added_fields(capsys, dns_server):
    """Every added field is there (null or empty) when nothing could be checked."""
    call_command("check_dns", "shop.no-such.co.uk", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["spf"]["status"] == "unknown"
    assert data["spf"]["dns_lookups"] is None
    assert data["spf"]["void_lookups"] is None
    assert data["spf"]["macro_terms"] == []
    assert data["dkim"]["cname_chain"] == []
    assert data["dmarc"]["organizational_domain"] == "no-such.co.uk"
    assert data["dmarc"]["policy_domain"] is None


def test_unknown_status_for_unreachable_dns(capsys, dns_server, dkim_key):
    """SERVFAIL shows as "unknown" with the DNS error in problems."""
    dns_server.servfail("company.com")
    call_command("check_dns", "company.com", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["spf"]["status"] == "unknown"
    assert "SERVFAIL" in data["spf"]["problems"][0]


def test_text_output(capsys, dns_server, dkim_key):
    """Without --json: one block per mechanism with what to publish."""
    publish_domain(dns_server, "company.com")
    call_command("check_dns", "company.com")
    out = capsys.readouterr().out
    assert out.startswith("company.com\n")
    assert "SPF   Valid" in out
    assert "expected: knowlix._domainkey.knowlix.com." in out


def test_saved_domain_gets_history_row(capsys, dns_server, dkim_key):
    """Checking a saved sending domain records the result in its history."""
    publish_domain(dns_server, "company.com")
    domain = services.add_sending_domain(name="company.com")
    call_command("check_dns", "company.com", "--json")
    assert domain.checks.first().trigger == DomainCheck.Trigger.COMMAND


def test_invalid_domain_is_an_error():
    """A name that is not a domain stops with an error."""
    with pytest.raises(CommandError):
        call_command("check_dns", "not a domain")
