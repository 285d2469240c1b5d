"""Sender authenticity: trust the receiving server's verdict, else check DKIM here.

Authentication-Results are trusted only from an authserv-id listed in the
``mail.gateway.authserv_ids`` parameter (anyone can write that header). Without a
trusted verdict, a DKIM-signed message is verified locally with dkimpy; a DNS
failure is a *temperror* and never marks the sender unverified.
"""

from __future__ import annotations

from dataclasses import dataclass

import dkim
import dns.exception
import dns.resolver

from knowlix import params
from routing.matching import trusted_authserv_ids
from routing.parsing import ParsedMessage

DKIM_VERIFY = "mail.gateway.dkim_verify"  # "false" turns the local check off


@dataclass
class Verdict:
    is_unverified: bool = False
    text: str = ""  # e.g. "spf=pass dkim=pass dmarc=pass (mx.example.com)"


class DnsUnavailable(Exception):
    pass


def resolve_txt(name: bytes, timeout: int = 3) -> bytes | None:
    """The TXT record dkimpy asks for; None if it does not exist."""
    try:
        answer = dns.resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(str(exc)) from exc
    return b"".join(b"".join(r.strings) for r in answer)


def check_dkim(raw: bytes) -> str:
    """ "pass", "fail" or "temperror" for the message's first DKIM signature."""
    dns_failed = False

    def dnsfunc(name: bytes, timeout: int = 3) -> bytes | None:
        nonlocal dns_failed
        try:
            return resolve_txt(name, timeout)
        except DnsUnavailable:
            dns_failed = True
            return None

    try:
        ok = dkim.verify(raw, dnsfunc=dnsfunc)
    except Exception:  # dkimpy raises on malformed signatures: that is a failure
        ok = False
    if ok:
        return "pass"
    return "temperror" if dns_failed else "fail"


def sender_verdict(parsed: ParsedMessage, raw: bytes) -> Verdict:
    """Is the From believable? Only a failed verdict marks the sender unverified."""
    trusted = trusted_authserv_ids()
    for verdict in parsed.auth_verdicts:
        if verdict.authserv_id in trusted:
            shown = [
                f"{method}={verdict.results[method]}"
                for method in ("spf", "dkim", "dmarc")
                if method in verdict.results
            ]
            text = f"{' '.join(shown)} ({verdict.authserv_id})"
            return Verdict(is_unverified=verdict.failed, text=text)
    enabled = (params.get_param(DKIM_VERIFY) or "true").lower() != "false"
    if parsed.has_dkim_signature and enabled:
        result = check_dkim(raw)
        return Verdict(is_unverified=result == "fail", text=f"dkim={result} (local)")
    return Verdict()
