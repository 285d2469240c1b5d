"""Celery tasks of dnscheck: thin wrappers around ``dnscheck.services``."""

from __future__ import annotations

from celery import shared_task

from dnscheck import services


@shared_task
def recheck_all_domains() -> int:
    """The daily beat job: re-check every sending domain, notify admins of breaks."""
    return services.recheck_all_domains()
