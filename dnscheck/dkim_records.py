"""DKIM delegation check: ``<selector>._domainkey.<domain>`` CNAME to Knowlix's key.

Pure: DNS goes through ``DnsLookup``. The customer publishes a CNAME, so Knowlix can
rotate its key without asking them again; the key the CNAME reaches must be a valid
``v=DKIM1`` public key (RFC 6376 §3.6.1) equal to the one Knowlix signs with. A
chain of CNAMEs is followed (at most ``MAX_CNAME_HOPS``, loops stopped) as resolvers do.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from dnscheck.domains import organizational_domain
from dnscheck.lookup import DnsLookup, fqdn
from dnscheck.report import MechanismResult, Status

MIN_RSA_BITS = 1024
MAX_CNAME_HOPS = 8


def parse_tags(record: str) -> dict[str, str]:
    """``a=1; b=2`` into a dict (later duplicates win; whitespace ignored)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        if "=" in part:
            name, _, value = part.partition("=")
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def key_record(public_key_b64: str) -> str:
    """The TXT value that publishes an RSA public key (base64 DER)."""
    return f"v=DKIM1; k=rsa; p={public_key_b64}"


def load_public_key(p_value: str) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
    """The key in a ``p=`` value; raises ValueError when it is not a key."""
    try:
        der = base64.b64decode(p_value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("p= is not valid base64") from exc
    if len(der) == 32:
        return ed25519.Ed25519PublicKey.from_public_bytes(der)
    try:
        key = load_der_public_key(der)
    except ValueError as exc:
        raise ValueError("p= does not hold a public key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError("p= holds a key type DKIM does not use")
    return key


def validate_key_record(record: str) -> tuple[str | None, str]:
    """(problem or None, the p= value) for one DKIM key TXT record."""
    tags = parse_tags(record)
    first = record.strip().split(";", 1)[0].replace(" ", "")
    if "v" in tags and (tags["v"] != "DKIM1" or not first.startswith("v=")):
        return "v= must be the first tag and equal DKIM1", ""
    if tags.get("k", "rsa") not in {"rsa", "ed25519"}:
        return f"unknown key type k={tags['k']}", ""
    if "p" not in tags:
        return "the p= tag (the public key) is missing", ""
    if not tags["p"]:
        return "p= is empty: the key has been revoked", ""
    try:
        key = load_public_key(tags["p"])
    except ValueError as exc:
        return str(exc), tags["p"]
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"the RSA key has {key.key_size} bits, below {MIN_RSA_BITS}", tags["p"]
    return None, tags["p"]


def same_key(p_value: str, expected_b64: str) -> bool:
    """True when both base64 values hold the same public key."""
    try:
        return _spki(p_value) == _spki(expected_b64)
    except ValueError:
        return False


def _spki(p_value: str) -> bytes:
    return load_public_key(p_value).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )


def new_dkim_result(
    domain: str, *, selector: str, target_domain: str
) -> MechanismResult:
    """The result before any finding: the CNAME to publish, no chain followed."""
    result = MechanismResult(
        Status.VALID,
        fqdn(f"{selector}._domainkey.{domain}"),
        "CNAME",
        fqdn(f"{selector}._domainkey.{target_domain}"),
    )
    result.extra = {"cname_chain": []}  # the names the CNAMEs lead through, in order
    return result


def check_dkim(
    domain: str,
    lookup: DnsLookup,
    *,
    selector: str,
    target_domain: str,
    public_key: str | None,
) -> MechanismResult:
    """Check the selector CNAME of ``domain`` and the key it leads to."""
    domain = fqdn(domain).rstrip(".")
    result = new_dkim_result(domain, selector=selector, target_domain=target_domain)
    name, target = result.record_name, result.expected
    answer = lookup.cname(name)
    if not answer.ok:
        return _unknown(result, answer.error)
    if answer.records:
        result.found = [f"CNAME {value}" for value in answer.records]
        return _check_target(result, answer.records[0], lookup, domain, public_key)
    txt = lookup.txt(name) if not answer.nxdomain else None
    if txt is not None and not txt.ok:
        return _unknown(result, txt.error)
    if txt is not None and txt.records:
        result.found = [f'TXT "{value}"' for value in txt.records]
        result.status = Status.WRONG
        result.problems.append(
            f"A TXT record is published at {name} instead of the CNAME. Replace it "
            f"with a CNAME to {target}, so Knowlix can rotate its key without "
            "breaking your mail."
        )
        return result
    doubled = lookup.cname(f"{name}{domain}")
    if doubled.ok and doubled.records:
        result.found = [f"{fqdn(name + domain)} CNAME {doubled.records[0]}"]
        result.status = Status.WRONG
        result.problems.append(
            f"The record was created as {fqdn(name + domain)}: your DNS provider "
            f"added {domain} to the name a second time. Enter only the host part "
            f"({_host_part(name, domain)}) as the record's name."
        )
        return result
    result.status = Status.MISSING
    result.problems.append(
        f"No DKIM record at {name}: publish a CNAME to {target} so mail Knowlix "
        f"sends for {domain} is signed."
    )
    organizational = organizational_domain(domain)
    if organizational != domain:
        result.problems.append(
            f"{domain} is a subdomain and needs its own record: in the "
            f"{organizational} zone the host is {selector}._domainkey."
            f"{_host_part(domain + '.', organizational)}."
        )
    return result


def _host_part(name: str, domain: str) -> str:
    return name.rstrip(".")[: -len(domain) - 1]


def _unknown(result: MechanismResult, error: str | None) -> MechanismResult:
    result.status = Status.UNKNOWN
    result.problems.append(f"Could not check: {error}.")
    return result


def _check_target(
    result: MechanismResult,
    value: str,
    lookup: DnsLookup,
    domain: str,
    public_key: str | None,
) -> MechanismResult:
    target = result.expected
    if value == fqdn(target.rstrip(".") + "." + domain):
        result.status = Status.WRONG
        result.problems.append(
            f"The CNAME points to {value}: your DNS provider appended {domain} to the "
            f"target. Enter the target with a trailing dot: {target}"
        )
        return result
    chain = [value]
    result.extra["cname_chain"] = chain
    while chain[-1] != target:
        if chain[-1] in (result.record_name, *chain[:-1]):
            return _wrong_chain(result, chain, "loops", "receivers never reach a key")
        if len(chain) > MAX_CNAME_HOPS:
            return _wrong_chain(
                result,
                chain,
                f"has more than {MAX_CNAME_HOPS} aliases",
                "resolvers give up",
            )
        hop = lookup.cname(chain[-1])
        if not hop.ok:
            return _unknown(result, hop.error)
        if not hop.records:
            break
        result.found.append(f"{chain[-1]} CNAME {hop.records[0]}")
        chain.append(hop.records[0])
    if chain[-1] != target and len(chain) == 1:
        result.status = Status.WRONG
        result.problems.append(
            f"The CNAME points elsewhere ({value}); it must point to {target}."
        )
        return result
    if chain[-1] != target:
        return _wrong_chain(
            result, chain, f"ends at {chain[-1]}", f"it must reach {target}"
        )
    _check_key(result, lookup, public_key)
    if len(chain) > 1:
        through = ", ".join(chain[:-1])
        result.problems.append(
            f"The CNAME reaches {target} through {through}: receivers follow the "
            "chain, so it works while "
            f"{'that alias keeps' if len(chain) == 2 else 'those aliases keep'} "
            f"pointing there; a CNAME straight to {target} does not depend on "
            f"{'it' if len(chain) == 2 else 'them'}."
        )
    return result


def _wrong_chain(
    result: MechanismResult, chain: list[str], what: str, why: str
) -> MechanismResult:
    names = " → ".join([result.record_name, *chain])
    result.status = Status.WRONG
    result.problems.append(
        f"The CNAME chain {what} ({names}): {why}. Point {result.record_name} "
        f"straight to {result.expected}."
    )
    return result


def _check_key(
    result: MechanismResult, lookup: DnsLookup, public_key: str | None
) -> None:
    """Judge the key published at the target (Knowlix's side)."""
    target = result.expected
    key = lookup.txt(target)
    if not key.ok:
        _unknown(result, key.error)
        return
    keys = [r for r in key.records if "p=" in r.replace(" ", "")]
    result.found.extend(f'{target} TXT "{r}"' for r in keys)
    if len(keys) != 1:
        result.status = Status.WRONG
        count = "no" if not keys else str(len(keys))
        result.problems.append(
            f"The CNAME is right, but {target} publishes {count} DKIM key records "
            "(Knowlix's side): contact Knowlix support."
        )
        return
    problem, p_value = validate_key_record(keys[0])
    if problem:
        result.status = Status.WRONG
        result.problems.append(f"The key at {target} is not valid: {problem}.")
    elif not public_key:
        result.status = Status.WRONG
        result.problems.append(
            "Knowlix has no DKIM signing key yet: run "
            "`python manage.py dkim_keygen`, then check again."
        )
    elif not same_key(p_value, public_key):
        result.status = Status.WRONG
        result.problems.append(
            f"The key published at {target} does not match Knowlix's signing key "
            "(a key rotation not yet published?): signatures would not verify."
        )
