"""Celery tasks of dnscheck: thin wrappers (the daily re-check notifies admins)."""

from __future__ import annotations

from celery import shared_task

from dnscheck import notify


@shared_task
def recheck_all_domains() -> int:
    """The daily beat job: re-check every sending domain, notify admins of breaks."""
    return notify.recheck_all_domains()
