"""Celery tasks of dnscheck: thin wrappers around ``dnscheck.services``."""

from __future__ import annotations

from celery import shared_task

from dnscheck import services
from dnscheck.models import DomainCheck, SendingDomain


@shared_task
def recheck_all_domains() -> int:
    """The daily beat job: re-check every sending domain, notify admins of breaks."""
    return services.recheck_all_domains()


@shared_task
def recheck_domain(domain_id: int) -> None:
    """Check one domain in the background (deleted domains are skipped)."""
    domain = SendingDomain.objects.filter(pk=domain_id).first()
    if domain is None:
        return
    services.check_sending_domain(domain=domain, trigger=DomainCheck.Trigger.SCHEDULED)
