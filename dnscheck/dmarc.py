"""DMARC (RFC 7489): the policy record at ``_dmarc.<domain>`` or inherited from above.

Pure: DNS goes through ``DnsLookup``. A subdomain without its own record gets the
policy of its organizational domain (its ``sp=``, else ``p=``), found from the Public
Suffix List as RFC 7489 §6.6.3 says: ``shop.example.co.uk`` inherits from
``example.co.uk``, never from ``co.uk``, and names in between are not consulted.
"""

from __future__ import annotations

import re

from dnscheck.domains import organizational_domain
from dnscheck.lookup import DnsLookup, fqdn
from dnscheck.report import MechanismResult, Status

POLICIES = {"none", "quarantine", "reject"}
KNOWN_TAGS = {"v", "p", "sp", "np", "adkim", "aspf", "pct", "rua", "ruf", "fo", "rf"}
KNOWN_TAGS |= {"ri", "psd", "t"}
_MAILTO = re.compile(
    r"^mailto:[^@\s,;!]+@[a-z0-9-]+(\.[a-z0-9-]+)+(![0-9]+[kmgt]?)?$", re.I
)


def is_dmarc(txt: str) -> bool:
    return txt.strip().lower().startswith("v=dmarc1")


def parse_dmarc(record: str) -> tuple[dict[str, str], list[str]]:
    """The tags of a DMARC record and the syntax problems found, as sentences."""
    parts = [part.strip() for part in record.strip().split(";")]
    parts = [part for part in parts if part]
    tags: dict[str, str] = {}
    problems: list[str] = []
    for index, part in enumerate(parts):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            problems.append(f'"{part}" is not a tag=value pair.')
            continue
        if index == 0 and (name != "v" or value != "DMARC1"):
            problems.append('The record must start with "v=DMARC1" exactly.')
        if name.lower() in tags:
            problems.append(f'The tag "{name}" appears twice.')
        elif name.lower() not in KNOWN_TAGS:
            problems.append(f'"{part}" is not a DMARC tag (a typo?).')
        tags[name.lower()] = value
    problems.extend(_check_values(tags))
    return tags, problems


def _check_values(tags: dict[str, str]) -> list[str]:
    problems: list[str] = []
    if "p" not in tags:
        problems.append("The policy tag p= is missing (p=none, quarantine or reject).")
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag].lower() not in POLICIES:
            problems.append(
                f'"{tag}={tags[tag]}" is not a policy: use none, quarantine or reject.'
            )
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in {"r", "s"}:
            problems.append(f'"{tag}={tags[tag]}" must be r (relaxed) or s (strict).')
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        problems.append(f'"pct={tags["pct"]}" must be a whole number from 0 to 100.')
    for tag in ("rua", "ruf"):
        for uri in (u.strip() for u in tags.get(tag, "").split(",") if tag in tags):
            if not _MAILTO.match(uri):
                problems.append(
                    f'"{uri}" in {tag}= is not a report address: use '
                    "mailto:someone@example.com."
                )
    if "fo" in tags and not set(tags["fo"].split(":")) <= {"0", "1", "d", "s"}:
        problems.append(f'"fo={tags["fo"]}" must list 0, 1, d or s separated by ":".')
    if "ri" in tags and not tags["ri"].isdigit():
        problems.append(f'"ri={tags["ri"]}" must be a number of seconds.')
    return problems


def proposal(domain: str, tags: dict[str, str] | None = None) -> str:
    """The record to publish: the default, keeping a valid policy and rua."""
    tags = tags or {}
    policy = tags.get("p", "none").lower()
    policy = policy if policy in POLICIES else "none"
    rua = tags.get("rua", "")
    if not rua or not all(_MAILTO.match(u.strip()) for u in rua.split(",")):
        rua = f"mailto:postmaster@{domain}"
    return f"v=DMARC1; p={policy}; rua={rua}"


def new_dmarc_result(domain: str) -> MechanismResult:
    """The result before any finding: the default record to publish."""
    result = MechanismResult(
        Status.VALID, fqdn(f"_dmarc.{domain}"), "TXT", proposal(domain)
    )
    # policy_domain: whose _dmarc record applies (None when none does).
    result.extra = {
        "organizational_domain": organizational_domain(domain),
        "policy_domain": None,
    }
    return result


def check_dmarc(domain: str, lookup: DnsLookup, *, dkim_valid: bool) -> MechanismResult:
    """Check the policy that applies to mail from ``domain``."""
    domain = fqdn(domain).rstrip(".")
    result = new_dmarc_result(domain)
    name, organizational = result.record_name, organizational_domain(domain)
    answer = lookup.txt(name)
    if not answer.ok:
        return _unknown(result, answer.error)
    records = [r for r in answer.records if is_dmarc(r)]
    applies_from = domain
    if not records and organizational != domain:
        inherited = lookup.txt(f"_dmarc.{organizational}")
        if not inherited.ok:
            return _unknown(result, inherited.error)
        records = [r for r in inherited.records if is_dmarc(r)]
        applies_from = organizational
    if not records:
        above = (
            ""
            if organizational == domain
            else f", nor at _dmarc.{organizational} (the organizational domain, "
            "whose policy would apply)"
        )
        result.status = Status.MISSING
        result.problems.append(
            f"No DMARC record at {name}{above}: publish this one to start receiving "
            "reports. It only monitors (p=none) until you tighten it."
        )
        return result
    result.extra["policy_domain"] = applies_from
    prefix = "" if applies_from == domain else f"_dmarc.{applies_from}: "
    result.found = [prefix + r for r in records]
    if len(records) > 1:
        result.status = Status.WRONG
        result.problems.append(
            f"{len(records)} DMARC records are published at _dmarc.{applies_from}: "
            "receivers then ignore DMARC. Keep a single one."
        )
        return result
    tags, problems = parse_dmarc(records[0])
    if problems:
        result.status = Status.WRONG
        result.problems.extend(problems)
        result.expected = proposal(domain, tags)
        return result
    policy = tags["p"].lower()
    if applies_from != domain:
        policy = tags.get("sp", tags["p"]).lower()
        source = "sp=" if "sp" in tags else "p="
        result.problems.append(
            f"{domain} has no DMARC record of its own: the policy of the "
            f"organizational domain {applies_from} applies ({source}{policy}). "
            "Publish the record below only if the subdomain needs a different one."
        )
        result.expected = proposal(domain, {"p": policy, "rua": tags.get("rua", "")})
    else:
        result.expected = records[0]
    _advise(result, domain, tags, policy, dkim_valid)
    return result


def _advise(
    result: MechanismResult,
    domain: str,
    tags: dict[str, str],
    policy: str,
    dkim_valid: bool,
) -> None:
    """Advice sentences that do not make the record wrong."""
    if policy == "none":
        result.problems.append(
            "p=none only monitors: once SPF and DKIM pass, move to p=quarantine and "
            "then p=reject so receivers refuse forged mail."
        )
    if tags.get("pct", "100") != "100":
        result.problems.append(
            f"pct={tags['pct']}: the policy applies to only {tags['pct']}% of "
            "failing mail."
        )
    strict = tags.get("adkim", "r").lower() == "s"
    mode = " even in strict mode (adkim=s)" if strict else ""
    if dkim_valid:
        result.problems.append(
            f"Alignment: Knowlix signs mail from {domain} with d={domain}, so DKIM "
            f"aligns with the From address{mode} and DMARC passes."
        )
    else:
        consequence = {
            "none": "is only reported",
            "quarantine": "goes to spam",
            "reject": "is refused",
        }[policy]
        result.problems.append(
            f"Alignment: DMARC needs SPF or DKIM to pass for {domain} itself. Until "
            f"the DKIM record is valid, mail Knowlix sends for {domain} fails DMARC "
            f"and {consequence} (p={policy})."
        )


def _unknown(result: MechanismResult, error: str | None) -> MechanismResult:
    result.status = Status.UNKNOWN
    result.problems.append(f"Could not check: {error}.")
    return result
