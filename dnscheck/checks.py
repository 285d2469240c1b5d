"""Check a sending domain's SPF, DKIM and DMARC records: pure, resolver injected.

No ORM and no settings: ``CheckConfig`` carries Knowlix's SPF include, DKIM selector,
target domain and public key. A domain that does not exist (NXDOMAIN) or a DNS error
makes a mechanism ``unknown`` ("could not check"), never ``missing``; the whole check
shares one time budget (see ``DnsLookup``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dns.resolver

from dnscheck.dkim_records import check_dkim, new_dkim_result
from dnscheck.dmarc import check_dmarc, new_dmarc_result
from dnscheck.lookup import DnsLookup
from dnscheck.report import DomainReport, Status
from dnscheck.spf import check_spf, new_spf_result

__all__ = [
    "CheckConfig",
    "DomainReport",
    "Status",
    "check_domain",
    "is_valid_domain_name",
    "normalize_domain",
]


@dataclass(frozen=True)
class CheckConfig:
    spf_include: str = "_spf.knowlix.com"
    dkim_selector: str = "knowlix"
    dkim_target_domain: str = "knowlix.com"
    # Base64 DER of Knowlix's active DKIM public key; None before dkim_keygen ran.
    dkim_public_key: str | None = None


def normalize_domain(value: str) -> str:
    """``Company.COM.`` -> ``company.com`` (IDNs to their ASCII form)."""
    value = value.strip().rstrip(".").lower()
    try:
        return value.encode("idna").decode("ascii")
    except UnicodeError:
        return value


def check_domain(
    domain: str,
    resolver: dns.resolver.Resolver,
    config: CheckConfig | None = None,
    *,
    budget: float | None = None,
) -> DomainReport:
    """Query DNS for ``domain`` and judge each mechanism (a few seconds at most)."""
    config = config or CheckConfig()
    domain = normalize_domain(domain)
    lookup = DnsLookup(resolver, budget=budget)
    apex = lookup.txt(domain)
    if apex.nxdomain:
        return _nonexistent(domain, config)
    spf = check_spf(domain, apex, lookup, config.spf_include)
    dkim = check_dkim(
        domain,
        lookup,
        selector=config.dkim_selector,
        target_domain=config.dkim_target_domain,
        public_key=config.dkim_public_key,
    )
    dmarc = check_dmarc(domain, lookup, dkim_valid=dkim.status == Status.VALID)
    return DomainReport(domain=domain, spf=spf, dkim=dkim, dmarc=dmarc)


def _nonexistent(domain: str, config: CheckConfig) -> DomainReport:
    problem = (
        f"Could not check: {domain} does not exist in DNS (NXDOMAIN). Check the "
        "spelling, or wait until the domain is registered and its zone published."
    )
    spf = new_spf_result(domain, config.spf_include)
    dkim = new_dkim_result(
        domain,
        selector=config.dkim_selector,
        target_domain=config.dkim_target_domain,
    )
    dmarc = new_dmarc_result(domain)
    for result in (spf, dkim, dmarc):
        result.status = Status.UNKNOWN
        result.problems.append(problem)
    return DomainReport(domain=domain, spf=spf, dkim=dkim, dmarc=dmarc)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_valid_domain_name(name: str) -> bool:
    """A normalized host name with at least two labels and a non-numeric TLD."""
    labels = name.split(".")
    return (
        len(name) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )
