"""Organizational domains (RFC 7489 §3.2) from the Public Suffix List.

The list is the one bundled with ``publicsuffixlist`` (updated with the package),
never fetched at run time: checks must work without internet access beyond DNS.
Both the ICANN and the private sections count, as the RFC's list does.
"""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList


@cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled file once per process (~30 ms)


def organizational_domain(domain: str) -> str:
    """``shop.example.co.uk`` -> ``example.co.uk``: the public suffix and one label.

    A name that is itself a public suffix is its own organizational domain. Unknown
    top-level domains count as public suffixes (``company.test`` -> itself).
    """
    name = domain.strip().rstrip(".").lower()
    return _suffix_list().privatesuffix(name) or name
