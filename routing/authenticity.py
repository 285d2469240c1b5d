"""Sender authenticity: is the From address proven, failed, or merely claimed?

Proof is a ``pass`` aligned with the From domain in an ``Authentication-Results``
of a trusted authserv-id (``mail.gateway.authserv_ids``, set by an admin: anyone
can write that header, only our own MTA's is believed, and it removes copies of
its id that arrive from outside), or
a DKIM signature checked here with dkimpy whose ``d=`` aligns with the From domain
(relaxed alignment: the same organizational domain, RFC 7489). A DNS failure is a
*temperror*: it neither proves nor fails. Only a single From field with a single
address can be proven (a pass may be for another From than the first one). Invariant: mail claiming a user's address
without proof is *unverified*: never authored as the user, marked, never mailed to
followers in the user's name, loop-limited like an outsider. A contact's mail is
marked only when authentication fails.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import dkim
import dns.exception
import dns.resolver
from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from dnscheck.domains import organizational_domain
from dnscheck.services import get_resolver
from knowlix import params
from routing.matching import trusted_authserv_ids
from routing.parsing import ParsedMessage
from routing.reports import AuthVerdict

DKIM_VERIFY = "mail.gateway.dkim_verify"  # "false" turns the local check off
MAX_SIGNATURES = 5  # checked per message (each may cost a DNS query)
FAILURES = ("fail", "softfail", "permerror")


@dataclass
class Verdict:
    passed: bool = False  # proven: an aligned pass (trusted or checked here)
    failed: bool = False  # authentication failed (trusted verdict or local DKIM)
    text: str = ""  # e.g. "spf=pass dkim=pass dmarc=pass (mx.example.com)"
    claims_user: bool = False  # the From is the address of a Knowlix user
    # A trusted SPF, DKIM or DMARC fail (or a local DKIM fail): never answered
    some_failed: str = ""

    @property
    def is_unverified(self) -> bool:
        """Marked *unverified sender*: a failure, or a user's address unproven."""
        return self.failed or (self.claims_user and not self.passed)


class DnsUnavailable(Exception):
    pass


def resolve_txt(name: bytes, timeout: int = 3) -> bytes | None:
    """The TXT record dkimpy asks for (KNOWLIX_DNS_NAMESERVERS); None if absent."""
    resolver = get_resolver()
    try:
        answer = resolver.resolve(name.decode("ascii"), "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(str(exc)) from exc
    return b"".join(b"".join(r.strings) for r in answer)


def is_aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1): the same organizational domain."""
    domain = domain.strip().rstrip(".").lower()
    from_domain = from_domain.strip().rstrip(".").lower()
    if not domain or not from_domain:
        return False
    return domain == from_domain or organizational_domain(
        domain
    ) == organizational_domain(from_domain)


def check_dkim(raw: bytes, from_domain: str = "") -> str:
    """``pass`` (a valid signature aligned with ``from_domain``; any valid one when
    it is empty), ``unaligned`` (valid, another domain), ``partial`` (valid for a
    first part of the body only: an ``l=`` tag, RFC 6376 8.2, lets anyone append
    text), ``fail`` or ``temperror``."""
    dns_failed = False

    def dnsfunc(name: bytes, timeout: int = 3) -> bytes | None:
        nonlocal dns_failed
        try:
            return resolve_txt(name, timeout)
        except DnsUnavailable:
            dns_failed = True
            return None

    try:
        verifier = dkim.DKIM(raw)
        count = sum(
            1 for name, _value in verifier.headers if name.lower() == b"dkim-signature"
        )
    except Exception:  # noqa: BLE001 - dkimpy raises on unparsable mail: no proof
        return "fail"
    valid_elsewhere = partial = False
    for index in range(min(count, MAX_SIGNATURES)):
        try:
            ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
        except Exception:  # noqa: BLE001 - a malformed signature is a failed one
            ok = False
        if not ok:
            continue
        if b"l" in verifier.signature_fields:
            partial = True
            continue
        signer = (verifier.domain or b"").decode("ascii", "replace")
        if not from_domain or is_aligned(signer, from_domain):
            return "pass"
        valid_elsewhere = True
    if valid_elsewhere:
        return "unaligned"
    if partial:
        return "partial"
    return "temperror" if dns_failed else "fail"


def trusted_pass(verdict: AuthVerdict, from_domain: str) -> bool:
    """An aligned ``pass`` in a trusted verdict: DMARC, DKIM ``header.d`` or SPF
    ``smtp.mailfrom`` (a result without its domain proves nothing)."""
    for entry in verdict.entries:
        if entry.result != "pass":
            continue
        props = entry.properties
        if entry.method == "dmarc":
            domain = props.get("header.from", from_domain)
        elif entry.method == "dkim":
            domain = (
                props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            )
        elif entry.method == "spf":
            domain = props.get("smtp.mailfrom", "").rpartition("@")[2]
        else:
            continue
        if is_aligned(domain, from_domain):
            return True
    return False


def user_addresses(addresses: Collection[str]) -> set[str]:
    """Those of ``addresses`` (lower case) that a user (active or not) has: one
    query for a whole batch of senders."""
    wanted = {a.lower() for a in addresses if a}
    if not wanted:
        return set()
    return set(
        get_user_model()
        .objects.annotate(address=Lower("email"))
        .filter(address__in=wanted)
        .values_list("address", flat=True)
    )


def sender_verdict(
    parsed: ParsedMessage, raw: bytes, *, users: Collection[str] | None = None
) -> Verdict:
    """What proves or disproves the From address (see the module docstring).
    ``users``: :func:`user_addresses` of the senders, when the caller read them."""
    from_domain = parsed.from_address.rpartition("@")[2]
    if users is None:
        users = user_addresses([parsed.from_address])
    claims_user = parsed.from_address.lower() in users
    if not parsed.has_single_from:
        # Two From fields or addresses: a pass (the MTA's or dkimpy's) may be for
        # another one than the first, which Knowlix shows (RFC 7489 6.6.1).
        return Verdict(
            failed=True,
            text="from=ambiguous",
            claims_user=claims_user,
            some_failed="from=ambiguous",
        )
    trusted = trusted_authserv_ids()
    # Every trusted verdict counts (OpenDKIM and OpenDMARC each write one): the MTA
    # removes copies of its authserv-id that arrived from outside (RFC 8601 5.).
    ours = [v for v in parsed.auth_verdicts if v.authserv_id in trusted]
    if ours:
        text = (
            " ".join(
                f"{method}={verdict.results[method]}"
                for verdict in ours
                for method in ("spf", "dkim", "dmarc")
                if method in verdict.results
            )
            + f" ({ours[0].authserv_id})"
        )
        some_failed = next(
            (
                f"{e.method}={e.result}"
                for verdict in ours
                for e in verdict.entries
                if e.method in ("spf", "dkim", "dmarc") and e.result in FAILURES
            ),
            "",
        )
        passed = any(trusted_pass(verdict, from_domain) for verdict in ours)
        failed = not passed and any(verdict.failed for verdict in ours)
        if passed or failed or some_failed:
            return Verdict(
                passed=passed,
                failed=failed,
                text=text,
                claims_user=claims_user,
                some_failed=some_failed,
            )
        # no verdict either way: a local DKIM check may still prove it
    enabled = (params.get_param(DKIM_VERIFY) or "true").lower() != "false"
    if parsed.has_dkim_signature and enabled:
        result = check_dkim(raw, from_domain)
        return Verdict(
            passed=result == "pass",
            failed=result == "fail",
            text=f"dkim={result} (local)",
            claims_user=claims_user,
            some_failed="dkim=fail" if result == "fail" else "",
        )
    return Verdict(claims_user=claims_user)
