"""Celery tasks of the OAuth side (thin: ids in, one service call).

``keep_oauth_grants_alive`` runs daily (beat entry ``keep-oauth-grants-alive``): it
refreshes every valid grant not renewed for ``KEEPALIVE_DAYS``, so an unused refresh
token never silently expires (Microsoft: 90 days of inactivity) and a revoked one is
noticed, and its owner told, before mail needs it. It also prunes old authorizations.
"""

from __future__ import annotations

import datetime as dt

from celery import Task, shared_task
from django.db.models import Q
from django.utils import timezone

from mailservers.errors import OAuthProviderUnavailable, PermanentError
from mailservers.models import OAuthGrant
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.services import oauth as services
from mailservers.services import oauth_connect

__all__ = ["keep_oauth_grants_alive", "refresh_oauth_grant"]

KEEPALIVE_DAYS = 7


@shared_task(bind=True, max_retries=5, name="mailservers.tasks.refresh_oauth_grant")
def refresh_oauth_grant(self: Task, grant_id: int) -> None:
    try:
        services.keep_grant_alive(grant_id=grant_id)
    except OAuthProviderUnavailable as exc:
        raise self.retry(exc=exc, countdown=300 * 2**self.request.retries) from exc
    except PermanentError:
        # Recorded on the grant (needs reconnect / config error); tell its people.
        send_reconnect_notices()


@shared_task(name="mailservers.tasks.keep_oauth_grants_alive")
def keep_oauth_grants_alive() -> None:
    stale = timezone.now() - dt.timedelta(days=KEEPALIVE_DAYS)
    ids = OAuthGrant.objects.filter(
        Q(last_success_at__lt=stale) | Q(last_success_at__isnull=True),
        state=OAuthGrant.State.VALID,
    ).values_list("pk", flat=True)
    for grant_id in ids:
        refresh_oauth_grant.delay(grant_id)
    oauth_connect.prune_authorizations()
