"""Reads for the sending-domain pages."""

from __future__ import annotations

from django.db.models import QuerySet

from dnscheck.models import DomainCheck, SendingDomain


def list_sending_domains() -> QuerySet[SendingDomain]:
    return SendingDomain.objects.order_by("name")


def get_domain_history(*, domain: SendingDomain, limit: int = 30) -> list[DomainCheck]:
    """The latest checks of ``domain``, newest first (reports not loaded)."""
    return list(
        DomainCheck.objects.filter(domain=domain)
        .defer("report")
        .order_by("-checked_at", "-id")[:limit]
    )
