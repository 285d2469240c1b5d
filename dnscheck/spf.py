"""SPF (RFC 7208): parse the domain's record, count DNS lookups, propose a fix.

Pure: DNS goes through ``DnsLookup``. A domain must publish exactly one ``v=spf1``
TXT record that includes Knowlix's servers, stays within the 10 DNS-querying terms
(RFC 7208 §4.6.4, includes expanded) and never ends in ``+all``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from dnscheck.lookup import Answer, DnsLookup, fqdn
from dnscheck.report import MechanismResult, Status, worst

MAX_LOOKUPS = 10
MAX_DEPTH = 10
LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
MECHANISMS = LOOKUP_MECHANISMS | {"all", "ip4", "ip6"}
_SPF_START = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_DOMAIN_SPEC = re.compile(r"^[a-z0-9_%{}+=.-]*[a-z0-9_}.-]$", re.IGNORECASE)
_CIDR = re.compile(r"^(?P<domain>[^/]*)(?:/(?P<v4>\d{1,2}))?(?://(?P<v6>\d{1,3}))?$")


def is_spf(txt: str) -> bool:
    return bool(_SPF_START.match(txt.strip()))


@dataclass
class Term:
    raw: str
    qualifier: str  # "+", "-", "~", "?" ("+" when omitted)
    name: str  # lower-case mechanism or modifier name
    value: str  # after ":" or "=" ("" when absent)
    is_modifier: bool = False
    error: str | None = None

    @property
    def is_lookup(self) -> bool:
        if self.is_modifier:
            return self.name == "redirect"
        return self.name in LOOKUP_MECHANISMS


def _check_domain_spec(value: str, required: bool) -> str | None:
    if not value:
        return "a domain is required" if required else None
    if not _DOMAIN_SPEC.match(value) or ".." in value:
        return f"{value!r} is not a domain name"
    return None


def parse_term(raw: str) -> Term:
    """One whitespace-separated term, with ``error`` set when its syntax is wrong."""
    modifier = _MODIFIER.match(raw)
    if modifier and modifier.group(1).lower() not in MECHANISMS:
        term = Term(raw, "", modifier.group(1).lower(), modifier.group(2), True)
        if term.name in {"redirect", "exp"}:
            term.error = _check_domain_spec(term.value, required=True)
        return term
    has_qualifier = raw[:1] in {"+", "-", "~", "?"}
    qualifier = raw[0] if has_qualifier else "+"
    body = raw[1:] if has_qualifier else raw
    name, sep, value = body.partition(":")
    name = name.split("/", 1)[0]  # "mx/24" has a prefix length but no ":"
    term = Term(raw, qualifier, name.lower(), value)
    if term.name not in MECHANISMS:
        term.error = "unknown mechanism (a typo?)"
    elif term.name == "all":
        term.error = "'all' takes no value" if sep else None
    elif term.name in {"include", "exists"}:
        term.error = _check_domain_spec(value, required=True)
    elif term.name == "ptr":
        term.error = _check_domain_spec(value, required=False)
    elif term.name in {"a", "mx"}:
        term.error = _check_cidr_domain(name, body[len(name) :])
    else:
        term.error = _check_ip(term.name, value)
    return term


def _check_cidr_domain(name: str, rest: str) -> str | None:
    match = _CIDR.match(rest)
    if not match:
        return "bad prefix length"
    domain = match.group("domain")
    if domain and not domain.startswith(":"):
        return f"expected '{name}:domain'"
    if domain and (error := _check_domain_spec(domain[1:], required=True)):
        return error
    if match.group("v4") and int(match.group("v4")) > 32:
        return "IPv4 prefix length above 32"
    if match.group("v6") and int(match.group("v6")) > 128:
        return "IPv6 prefix length above 128"
    return None


def _check_ip(name: str, value: str) -> str | None:
    if not value:
        return "an address is required"
    network_class = ipaddress.IPv4Network if name == "ip4" else ipaddress.IPv6Network
    try:
        network_class(value, strict=False)
    except ValueError:
        kind = "IPv4" if name == "ip4" else "IPv6"
        return f"{value!r} is not an {kind} address or network"
    return None


def parse_record(record: str) -> list[Term]:
    """The terms after ``v=spf1``."""
    return [parse_term(raw) for raw in record.split()[1:]]


def merge_include(records: list[str], include: str) -> str:
    """One record with ``include:<include>`` before the ``all`` term, the rest kept.

    Several records are merged into one (duplicates dropped, one ``all`` at the end);
    invalid terms are left out; a permissive ``all``/``+all`` becomes ``~all``.
    """
    terms: list[Term] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        for term in parse_record(record):
            is_all = term.name == "all" and not term.is_modifier
            if term.error or term.raw.lower() in seen or (is_all and index > 0):
                continue
            seen.add(term.raw.lower())
            terms.append(term)
    if len(records) > 1:  # the first record's "all" goes last
        terms.sort(key=lambda t: t.name == "all" and not t.is_modifier)
    raw_terms = [
        "~all"
        if t.name == "all" and t.qualifier == "+" and not t.is_modifier
        else t.raw
        for t in terms
    ]
    wanted = f"include:{include}"
    if wanted.lower() not in seen:
        position = next(
            (i for i, t in enumerate(terms) if t.name == "all" and not t.is_modifier),
            next((i for i, t in enumerate(terms) if t.name == "redirect"), len(terms)),
        )
        raw_terms.insert(position, wanted)
    return " ".join(["v=spf1", *raw_terms])


@dataclass
class _Expansion:
    lookups: int = 0
    includes_knowlix: bool = False
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _expand(
    terms: list[Term],
    lookup: DnsLookup,
    include: str,
    state: _Expansion,
    seen: set[str],
    depth: int,
) -> None:
    """Count DNS-querying terms through includes and redirects, up to the limit."""
    for term in terms:
        if not term.is_lookup or term.error:
            continue
        state.lookups += 1
        if term.name not in {"include", "redirect"} or state.lookups > MAX_LOOKUPS:
            continue
        target = fqdn(term.value)
        if target == fqdn(include):
            state.includes_knowlix = True
        if "%" in term.value or target in seen or depth >= MAX_DEPTH:
            continue
        seen.add(target)
        answer = lookup.txt(target)
        if not answer.ok:
            state.errors.append(f"Could not expand {term.raw}: {answer.error}.")
            continue
        spf = [r for r in answer.records if is_spf(r)]
        if len(spf) != 1:
            state.problems.append(
                f"{term.raw} points to a domain with {len(spf) or 'no'} SPF record"
                f"{'s' if len(spf) > 1 else ''}: receivers treat this as a permanent "
                "error (permerror)."
            )
            continue
        _expand(parse_record(spf[0]), lookup, include, state, seen, depth + 1)


def check_spf(
    domain: str, answer: Answer, lookup: DnsLookup, include: str
) -> MechanismResult:
    """Check the TXT records already fetched at ``domain`` (``answer``)."""
    name = fqdn(domain)
    default = f"v=spf1 include:{include} ~all"
    result = MechanismResult(Status.VALID, name, "TXT", default)
    if not answer.ok:
        result.status = Status.UNKNOWN
        result.problems.append(f"Could not check: {answer.error}.")
        return result
    records = [r for r in answer.records if is_spf(r)]
    result.found = records
    if not records:
        result.status = Status.MISSING
        result.problems.append(
            f"No SPF record at {domain}: publish this TXT record so receivers accept "
            "mail Knowlix sends for you."
        )
        return result
    result.expected = merge_include(records, include)
    if len(records) > 1:
        result.status = Status.WRONG
        result.problems.append(
            f"{len(records)} SPF (v=spf1) records are published: receivers treat this "
            "as a permanent error and ignore SPF. Replace them with the single merged "
            "record below."
        )
        return result
    statuses = [Status.VALID]
    terms = parse_record(records[0])
    for term in terms:
        if term.error:
            statuses.append(Status.WRONG)
            result.problems.append(
                f'Syntax error in "{term.raw}": {term.error}. The record below leaves '
                "it out: correct it before adding it back."
            )
        elif term.name == "all" and not term.is_modifier and term.qualifier == "+":
            statuses.append(Status.WRONG)
            result.problems.append(
                f'"{term.raw}" lets any server on the internet send as {domain}: '
                'use "~all" (or "-all") instead.'
            )
    state = _Expansion()
    _expand(terms, lookup, include, state, {name}, 0)
    result.problems.extend(state.problems)
    statuses.extend(Status.WRONG for _ in state.problems)
    if state.lookups > MAX_LOOKUPS:
        statuses.append(Status.WRONG)
        result.problems.append(
            f"The record needs more than {MAX_LOOKUPS} DNS lookups once includes are "
            f"expanded ({state.lookups} counted): receivers stop with a permanent "
            "error. Remove unused include, a, mx, ptr or exists terms."
        )
    if not state.includes_knowlix:
        statuses.append(Status.WRONG)
        result.problems.append(
            f"The record does not include Knowlix's servers (include:{include}): "
            "publish the merged record below, which keeps everything else."
        )
        ours = _Expansion()
        _expand([parse_term(f"include:{include}")], lookup, include, ours, {name}, 0)
        if state.lookups <= MAX_LOOKUPS < state.lookups + ours.lookups:
            result.problems.append(
                f"With include:{include} added the record would need "
                f"{state.lookups + ours.lookups} DNS lookups, over the limit of "
                f"{MAX_LOOKUPS}: remove unused include, a or mx terms first."
            )
    if state.errors:
        statuses.append(Status.UNKNOWN)
        result.problems.extend(state.errors)
    result.status = worst(*statuses)
    if result.status == Status.VALID:
        result.expected = records[0]
    return result
