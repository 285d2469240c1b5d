"""DNS queries for the checks, each bounded in time, errors turned into values.

``DnsLookup`` wraps an injected dnspython resolver. Every query gets at most the
resolver's lifetime and the whole check shares one time budget, so a nameserver that
never answers costs a few seconds in total, not one timeout per query. Time-outs,
SERVFAIL and refusals come back as ``Answer.error`` ("could not check"), never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver


def fqdn(name: str) -> str:
    """Lower-case absolute form with the trailing dot."""
    return name.strip().lower().rstrip(".") + "."


def make_resolver(nameservers: list[str], timeout: float) -> dns.resolver.Resolver:
    """A resolver for ``host`` or ``host:port`` entries; the system's when empty."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        servers: list[dns.nameserver.Nameserver] = []
        for entry in (e.strip() for e in nameservers):
            if entry.startswith("["):  # [2001:db8::1]:53
                host, _, port = entry[1:].partition("]:")
            elif entry.count(":") == 1:  # 127.0.0.1:10053
                host, _, port = entry.partition(":")
            else:  # a bare IPv4 or IPv6 address
                host, port = entry, ""
            host = host.rstrip("]")
            servers.append(dns.nameserver.Do53Nameserver(host, int(port or 53)))
        resolver.nameservers = servers
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            # No /etc/resolv.conf: every query fails as "could not check".
            resolver = dns.resolver.Resolver(configure=False)
    # Each query may take ``timeout`` in all; with several nameservers each one gets
    # its share, so a dead first server still leaves time to ask the next.
    resolver.lifetime = timeout
    resolver.timeout = timeout / max(1, len(resolver.nameservers))
    resolver.cache = None
    return resolver


@dataclass
class Answer:
    """Records at a name: TXT strings joined, CNAME and MX targets as absolute
    names, addresses as text. ``is_void`` is RFC 7208's "void lookup": NXDOMAIN, or
    an answer without records of the type asked."""

    name: str
    records: list[str] = field(default_factory=list)
    nxdomain: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_void(self) -> bool:
        return self.ok and not self.records


class DnsLookup:
    """TXT, CNAME, MX and address queries against one resolver, within one time
    budget."""

    def __init__(
        self,
        resolver: dns.resolver.Resolver,
        *,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self.per_query = float(resolver.lifetime or resolver.timeout or 2.0)
        self.clock = clock
        self.deadline = clock() + (budget if budget is not None else 3 * self.per_query)
        self.queries = 0

    def txt(self, name: str) -> Answer:
        return self._query(name, "TXT")

    def cname(self, name: str) -> Answer:
        return self._query(name, "CNAME")

    def query(self, name: str, rdtype: str) -> Answer:
        """Any of TXT, CNAME, MX, A, AAAA."""
        return self._query(name, rdtype)

    def _query(self, name: str, rdtype: str) -> Answer:
        name = fqdn(name)
        remaining = self.deadline - self.clock()
        if remaining <= 0.05:
            return Answer(
                name,
                error="not checked: the DNS check ran out of time "
                "because earlier queries got no answer",
            )
        self.queries += 1
        try:
            answer = self.resolver.resolve(
                dns.name.from_text(name),
                rdtype,
                raise_on_no_answer=False,
                lifetime=min(self.per_query, remaining),
                search=False,
            )
        except dns.resolver.NXDOMAIN:
            return Answer(name, nxdomain=True)
        except dns.exception.Timeout:
            return Answer(
                name,
                error=f"no answer from the nameserver for {name} "
                f"{rdtype} within {self.per_query:g} s (time-out)",
            )
        except dns.resolver.NoNameservers as exc:
            rcode = "REFUSED" if "REFUSED" in str(exc) else "SERVFAIL"
            return Answer(
                name,
                error=f"the nameserver answered {rcode} for {name} "
                f"{rdtype}: the zone is broken or unreachable",
            )
        except (dns.exception.DNSException, ValueError) as exc:
            return Answer(name, error=f"DNS error for {name} {rdtype}: {exc}")
        self._prefer(answer.nameserver, answer.port)
        records: list[str] = []
        wanted = dns.rdatatype.from_text(rdtype)
        for rrset in answer.response.answer:
            if rrset.rdtype != wanted:
                continue
            for rdata in rrset:
                if rdtype == "TXT":
                    records.append(b"".join(rdata.strings).decode("utf-8", "replace"))
                elif rdtype == "MX":
                    records.append(fqdn(rdata.exchange.to_text()))
                elif rdtype in {"A", "AAAA"}:
                    records.append(rdata.address)
                else:
                    records.append(fqdn(rdata.target.to_text()))
        return Answer(name, records=records)

    def _prefer(self, address: str | None, port: int | None) -> None:
        """Ask the nameserver that just answered first from now on.

        dnspython tries the nameservers in order for every query, so a dead first
        one would cost its share of the time-out on each query and exhaust the
        check's budget; this way it costs that once.
        """
        servers = list(self.resolver.nameservers)
        for index, server in enumerate(servers[1:], start=1):
            if (
                isinstance(server, dns.nameserver.Do53Nameserver)
                and server.address == address
                and server.port == port
            ):
                del servers[index]
                self.resolver.nameservers = [server, *servers]
                return
