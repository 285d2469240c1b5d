"""SPF (RFC 7208): parse the domain's record, count DNS lookups, propose a fix.

Pure: DNS goes through ``DnsLookup``. A domain must publish exactly one ``v=spf1``
TXT record that includes Knowlix's servers, stays within the 10 DNS-querying terms
and the 2 void lookups (RFC 7208 §4.6.4, includes and redirects expanded) and never
ends in ``+all``. A term whose domain uses a sender macro (``%{i}``, ``%{s}``, …,
§7) is reported, never queried: its outcome is decided per message.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from dnscheck.lookup import Answer, DnsLookup, fqdn
from dnscheck.report import MechanismResult, Status, worst

MAX_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_DEPTH = 10
LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
MECHANISMS = LOOKUP_MECHANISMS | {"all", "ip4", "ip6"}
_SPF_START = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE)
_DOMAIN_SPEC = re.compile(r"^[a-z0-9_%{}+=.-]*[a-z0-9_}.-]$", re.IGNORECASE)
_CIDR = re.compile(r"^(?P<domain>[^/]*)(?:/(?P<v4>\d{1,2}))?(?://(?P<v6>\d{1,3}))?$")
# RFC 7208 §7.1: %{letter digits r delimiters}, or the escapes %%, %_ and %-.
_MACRO = re.compile(
    r"%(?:\{(?P<letter>[a-z])(?P<digits>\d*)(?P<reverse>r?)"
    r"(?P<delimiters>[.+,/_=-]*)\}|[%_-])",
    re.IGNORECASE,
)
# What each macro letter stands for; all but d depend on the message being checked.
SENDER_MACROS = {
    "s": "the sender's address",
    "l": "the local part of the sender's address",
    "o": "the domain of the sender's address",
    "i": "the sending server's IP address",
    "p": "the sending server's verified host name",
    "v": "in-addr or ip6, after the sending server's IP version",
    "h": "the HELO name of the sending server",
}
_EXP_ONLY_MACROS = {"c", "r", "t"}  # allowed in exp= explanation text only


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

    @property
    def domain_spec(self) -> str:
        """The domain the term names ("" for a bare ``a`` or ``mx``)."""
        if self.name in {"a", "mx"} and not self.is_modifier:
            return self.value.split("/", 1)[0]
        return self.value


def _check_domain_spec(value: str, required: bool) -> str | None:
    if not value:
        return "a domain is required" if required else None
    if not _DOMAIN_SPEC.match(value) or ".." in value:
        return f"{value!r} is not a domain name"
    return _check_macros(value)


def _check_macros(value: str) -> str | None:
    """What is wrong with the macros of a domain-spec (RFC 7208 §7.1), or None."""
    if "%" in _MACRO.sub("", value):
        return "a % must start a macro such as %{i}, or be written %%"
    for match in _MACRO.finditer(value):
        letter = (match.group("letter") or "").lower()
        if letter in _EXP_ONLY_MACROS:
            return f"{match.group(0)} is allowed only in exp= explanation text"
        if letter and letter != "d" and letter not in SENDER_MACROS:
            return f"{match.group(0)} is not an SPF macro"
        if match.group("digits") and int(match.group("digits")) == 0:
            return f"{match.group(0)} keeps no part of the name (0)"
    return None


def sender_macros(value: str) -> list[str]:
    """The macros in ``value`` that depend on the message, e.g. ``["%{i}"]``."""
    return [
        match.group(0)
        for match in _MACRO.finditer(value)
        if (match.group("letter") or "").lower() in SENDER_MACROS
    ]


def expand_macros(value: str, domain: str) -> str:
    """``value`` with ``%{d…}`` set to ``domain`` and the escapes replaced (§7.3).

    Call only when ``sender_macros(value)`` is empty.
    """

    def replace(match: re.Match[str]) -> str:
        if not match.group("letter"):
            return {"%%": "%", "%_": " ", "%-": "%20"}[match.group(0)]
        delimiters = re.escape(match.group("delimiters") or ".")
        parts = re.split(f"[{delimiters}]", domain.rstrip("."))
        if match.group("reverse"):
            parts.reverse()
        if match.group("digits"):
            parts = parts[-int(match.group("digits")) :]
        return ".".join(parts)

    return _MACRO.sub(replace, value)


def _describe_macros(macros: list[str]) -> str:
    described = [
        f"{macro} ({SENDER_MACROS[macro[2].lower()]})"
        for macro in dict.fromkeys(macros)
    ]
    noun = "macro" if len(described) == 1 else "macros"
    return f"the {noun} " + " and ".join(described)


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
    void_terms: list[str] = field(default_factory=list)
    macro_terms: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each makes the record wrong
    notes: list[str] = field(default_factory=list)  # advice only
    errors: list[str] = field(default_factory=list)  # could not check


def _expand(
    terms: list[Term],
    lookup: DnsLookup,
    include: str,
    state: _Expansion,
    domain: str,
    path: tuple[str, ...],
) -> None:
    """Count DNS-querying terms and void lookups through includes and redirects.

    ``domain`` holds the record of ``terms`` (what a bare ``a``/``mx`` and ``%{d}``
    name); ``path`` is the chain of domains being expanded, to stop loops. Like a
    receiver, it sends no more queries once the lookup limit is passed.
    """
    for term in terms:
        if not term.is_lookup or term.error:
            continue
        state.lookups += 1
        # ptr queries the sending server's address: nothing to look up without one.
        if state.lookups > MAX_LOOKUPS or term.name == "ptr":
            continue
        spec = term.domain_spec or domain
        if macros := sender_macros(spec):
            state.macro_terms.append(term.raw)
            state.notes.append(_macro_note(term, macros))
            continue
        target = fqdn(expand_macros(spec, domain))
        if term.name in {"include", "redirect"}:
            _expand_include(term, target, lookup, include, state, path)
        else:
            _count_void(term, target, lookup, state)


def _macro_note(term: Term, macros: list[str]) -> str:
    uses = f'"{term.raw}" uses {_describe_macros(macros)}'
    if term.name in {"include", "redirect"}:
        return (
            f"{uses}: the domain it names is known only for each message, so this "
            "check cannot expand it and counts it as one DNS lookup; its own "
            "lookups, and whether mail passes SPF through it, depend on the sender."
        )
    return (
        f"{uses}: its DNS query is known only for each message, so this check "
        "cannot evaluate it; whether it matches (or is a void lookup) depends on "
        "the sender."
    )


def _expand_include(
    term: Term,
    target: str,
    lookup: DnsLookup,
    include: str,
    state: _Expansion,
    path: tuple[str, ...],
) -> None:
    if target == fqdn(include):
        state.includes_knowlix = True
    if target in path:
        chain = " → ".join(name.rstrip(".") for name in (*path, target))
        state.problems.append(
            f'"{term.raw}" loops back to a record already being evaluated '
            f"({chain}): receivers go round until the {MAX_LOOKUPS}-lookup limit "
            "and stop with a permanent error (permerror)."
        )
        return
    if len(path) > MAX_DEPTH:
        return
    answer = lookup.txt(target)
    if not answer.ok:
        state.errors.append(f"Could not expand {term.raw}: {answer.error}.")
        return
    if answer.is_void:
        state.void_terms.append(term.raw)
    spf = [r for r in answer.records if is_spf(r)]
    if len(spf) != 1:
        state.problems.append(
            f"{term.raw} points to a domain with {len(spf) or 'no'} SPF record"
            f"{'s' if len(spf) > 1 else ''}: receivers treat this as a permanent "
            "error (permerror)."
        )
        return
    _expand(parse_record(spf[0]), lookup, include, state, target, (*path, target))


def _count_void(term: Term, target: str, lookup: DnsLookup, state: _Expansion) -> None:
    """One query for an a, mx or exists term; a void answer is counted."""
    answer = lookup.query(target, "MX" if term.name == "mx" else "A")
    if term.name == "a" and answer.is_void and not answer.nxdomain:
        # An IPv6-only host: not void for receivers that ask for AAAA.
        answer = lookup.query(target, "AAAA")
    if not answer.ok:
        state.errors.append(f"Could not check {term.raw}: {answer.error}.")
    elif answer.is_void:
        state.void_terms.append(term.raw)


def new_spf_result(domain: str, include: str) -> MechanismResult:
    """The result before any finding: the default record, nothing counted yet."""
    result = MechanismResult(
        Status.VALID, fqdn(domain), "TXT", f"v=spf1 include:{include} ~all"
    )
    # Counted once the record is read; None when it could not be.
    result.extra = {"dns_lookups": None, "void_lookups": None, "macro_terms": []}
    return result


def check_spf(
    domain: str, answer: Answer, lookup: DnsLookup, include: str
) -> MechanismResult:
    """Check the TXT records already fetched at ``domain`` (``answer``)."""
    name = fqdn(domain)
    result = new_spf_result(domain, include)
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
    _expand(terms, lookup, include, state, name, (name,))
    result.extra = {
        "dns_lookups": state.lookups,
        "void_lookups": len(state.void_terms),
        "macro_terms": state.macro_terms,
    }
    result.problems.extend(state.problems)
    statuses.extend(Status.WRONG for _ in state.problems)
    if state.lookups > MAX_LOOKUPS:
        statuses.append(Status.WRONG)
        result.problems.append(
            f"The record needs more than {MAX_LOOKUPS} DNS lookups once includes are "
            f"expanded ({state.lookups} counted): receivers stop with a permanent "
            "error. Remove unused include, a, mx, ptr or exists terms."
        )
    if len(state.void_terms) > MAX_VOID_LOOKUPS:
        statuses.append(Status.WRONG)
        voids = ", ".join(f'"{raw}"' for raw in state.void_terms)
        result.problems.append(
            f"{len(state.void_terms)} terms look up names that do not exist or have "
            f"no records ({voids}): receivers allow {MAX_VOID_LOOKUPS} such void "
            "lookups and then stop with a permanent error (permerror). Remove those "
            "terms, or publish the records they expect."
        )
    if not state.includes_knowlix:
        statuses.append(Status.WRONG)
        result.problems.append(
            f"The record does not include Knowlix's servers (include:{include}): "
            "publish the merged record below, which keeps everything else."
        )
        ours = _Expansion()
        _expand([parse_term(f"include:{include}")], lookup, include, ours, name, ())
        if state.lookups <= MAX_LOOKUPS < state.lookups + ours.lookups:
            result.problems.append(
                f"With include:{include} added the record would need "
                f"{state.lookups + ours.lookups} DNS lookups, over the limit of "
                f"{MAX_LOOKUPS}: remove unused include, a or mx terms first."
            )
    if state.errors:
        statuses.append(Status.UNKNOWN)
        result.problems.extend(state.errors)
    result.problems.extend(state.notes)
    result.status = worst(*statuses)
    if result.status == Status.VALID:
        result.expected = records[0]
    return result
