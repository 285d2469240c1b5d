"""Sending domains: add them, check their DNS, generate the DKIM key.

Owns SendingDomain, DomainCheck and DkimKey. DNS queries run outside any transaction
(they may take seconds); the result is written in one transaction that locks the
domain row, so concurrent checks of one domain cannot both see the same break.
Signing is ``dnscheck.signing``; telling admins of a break is ``dnscheck.notify``
(the layer above: the daily task and the ``check_dns`` command).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dnscheck.checks import (
    CheckConfig,
    check_domain,
    is_valid_domain_name,
    normalize_domain,
)
from dnscheck.errors import DomainAlreadyAdded, InvalidDomainName
from dnscheck.lookup import make_resolver
from dnscheck.models import DkimKey, DomainCheck, SendingDomain, Status
from dnscheck.report import DomainReport
from dnscheck.signing import get_active_dkim_key

__all__ = [
    "add_sending_domain",
    "check_sending_domain",
    "delete_sending_domain",
    "generate_dkim_key",
    "get_check_config",
    "get_resolver",
    "record_check",
]

BROKEN = {Status.MISSING, Status.WRONG}


# --- Checking -----------------------------------------------------------------------


def get_resolver() -> dns.resolver.Resolver:
    """A resolver for KNOWLIX_DNS_NAMESERVERS (the system's when empty)."""
    return make_resolver(
        list(settings.KNOWLIX_DNS_NAMESERVERS), float(settings.KNOWLIX_DNS_TIMEOUT)
    )


def get_check_config() -> CheckConfig:
    key = get_active_dkim_key()
    return CheckConfig(
        spf_include=settings.KNOWLIX_SPF_INCLUDE,
        dkim_selector=settings.KNOWLIX_DKIM_SELECTOR,
        dkim_target_domain=settings.KNOWLIX_DKIM_TARGET_DOMAIN,
        dkim_public_key=key.public_key if key else None,
    )


def run_check(name: str) -> DomainReport:
    """Check any domain name (saved or not) with the configured resolver."""
    return check_domain(name, get_resolver(), get_check_config())


def add_sending_domain(*, name: str, user: User | None = None) -> SendingDomain:
    """Save a new sending domain and check it right away."""
    name = normalize_domain(name)
    if not is_valid_domain_name(name):
        raise InvalidDomainName()
    if SendingDomain.objects.filter(name=name).exists():
        raise DomainAlreadyAdded()
    domain = SendingDomain.objects.create(name=name, created_by=user)
    check_sending_domain(domain=domain, trigger=DomainCheck.Trigger.CREATED)
    domain.refresh_from_db()
    return domain


def delete_sending_domain(*, domain: SendingDomain) -> None:
    domain.delete()


@dataclass(frozen=True)
class RecordedCheck:
    """A stored check, and the mechanisms it found broken that were valid before."""

    check: DomainCheck
    broken: list[str]


def check_sending_domain(*, domain: SendingDomain, trigger: str) -> RecordedCheck:
    """Query DNS for ``domain`` (seconds, no transaction held) and store the result."""
    report = run_check(domain.name)
    return record_check(domain_id=domain.pk, report=report, trigger=trigger)


@transaction.atomic
def record_check(
    *, domain_id: int, report: DomainReport, trigger: str
) -> RecordedCheck:
    """Store a report on the domain and in its history; locks the domain row.

    ``broken`` names the mechanisms that were valid and are now missing or wrong (a
    DNS error, "could not check", is not a break). Telling the admins is the
    caller's job (``dnscheck.notify``), inside this transaction when it should
    happen once per break.
    """
    domain = SendingDomain.objects.select_for_update().get(pk=domain_id)
    before = domain.statuses()
    now = timezone.now()
    domain.spf_status = report.spf.status.value
    domain.dkim_status = report.dkim.status.value
    domain.dmarc_status = report.dmarc.status.value
    broke = [
        name
        for name, status in domain.statuses().items()
        if before[name] == Status.VALID and status in BROKEN
    ]
    if domain.dkim_status == Status.VALID:
        domain.is_dkim_verified = True
    elif domain.dkim_status in BROKEN:
        domain.is_dkim_verified = False
    domain.last_report = report.to_dict()
    domain.last_checked_at = now
    fields = [
        "spf_status",
        "dkim_status",
        "dmarc_status",
        "is_dkim_verified",
        "last_report",
        "last_checked_at",
    ]
    if report.is_valid:
        domain.last_success_at, domain.last_error = now, ""
        fields += ["last_success_at", "last_error"]
    else:
        domain.last_error, domain.last_error_at = _summary(report), now
        fields += ["last_error", "last_error_at"]
    domain.save(update_fields=fields)
    check = DomainCheck.objects.create(
        domain=domain,
        checked_at=now,
        trigger=trigger,
        report=report.to_dict(),
        broke=bool(broke),
        **{f"{name}_status": status for name, status in domain.statuses().items()},
    )
    return RecordedCheck(check=check, broken=broke)


def _summary(report: DomainReport) -> str:
    lines = []
    for name, result in report.mechanisms():
        if result.status.value != Status.VALID:
            first = result.problems[0] if result.problems else ""
            lines.append(f"{name.upper()} {result.status.label.lower()}: {first}")
    return "\n".join(lines)


# --- DKIM keys (signing: dnscheck.signing) --------------------------------------------------------


@transaction.atomic
def generate_dkim_key(*, bits: int = 2048, selector: str | None = None) -> DkimKey:
    """Create a new RSA key, stored encrypted, and retire the previous one."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    DkimKey.objects.select_for_update().filter(is_active=True).update(is_active=False)
    return DkimKey.objects.create(
        selector=selector or settings.KNOWLIX_DKIM_SELECTOR,
        private_key=pem,
        public_key=base64.b64encode(der).decode(),
        bits=bits,
    )
