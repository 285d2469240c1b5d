"""Loop protection: count what each sender creates and posts in a sliding window.

Counts live in 10-minute buckets (``SenderRateCounter``), so the check is one
aggregate over at most ``minutes / 10`` rows. Users and allow-listed senders are
never limited. Limits are the ``mail.gateway.loop.*`` system parameters.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from knowlix import params
from routing.models import InboundMail, SenderRateCounter

LOOP_ALLOWLIST = "mail.gateway.loop.allowlist"  # comma-separated addresses/domains
BUCKET_MINUTES = 10


def _bucket(moment: dt.datetime) -> dt.datetime:
    return moment.replace(
        minute=moment.minute - moment.minute % BUCKET_MINUTES, second=0, microsecond=0
    )


def _window_start() -> dt.datetime:
    minutes = params.get_int_param(params.LOOP_MINUTES) or 120
    return _bucket(timezone.now() - dt.timedelta(minutes=minutes))


def is_allowed_sender(address: str) -> bool:
    allow = (params.get_param(LOOP_ALLOWLIST) or "").lower()
    entries = {e.strip() for e in allow.split(",") if e.strip()}
    domain = address.rpartition("@")[2]
    return address in entries or domain in entries or f"@{domain}" in entries


def is_over_limit(*, address: str, scope: str, record: str = "") -> bool:
    """True if the sender already reached the limit in the current window."""
    if not address or is_allowed_sender(address):
        return False
    limit = params.get_int_param(params.LOOP_LIMIT) or 20
    total = SenderRateCounter.objects.filter(
        address=address, scope=scope, record=record, bucket__gte=_window_start()
    ).aggregate(total=Sum("count"))["total"]
    return (total or 0) >= limit


def count_message(
    *, address: str, scope: str, record: str = "", new_record: bool = False
) -> None:
    """Add one to the sender's current bucket (safe under concurrency).

    ``new_record``: ``record`` was created in the current transaction, so nobody can
    have counted on it yet (record ids are never reused): its first bucket is simply
    inserted, without the update, savepoint and clean-up of the general case.
    """
    if not address:
        return
    key = {"address": address, "scope": scope, "record": record}
    bucket = _bucket(timezone.now())
    if new_record and record:
        SenderRateCounter.objects.create(**key, bucket=bucket, count=1)
        return
    if SenderRateCounter.objects.filter(**key, bucket=bucket).update(
        count=F("count") + 1
    ):
        return
    try:
        with transaction.atomic():
            SenderRateCounter.objects.create(**key, bucket=bucket, count=1)
    except IntegrityError:  # created concurrently: count on it
        SenderRateCounter.objects.filter(**key, bucket=bucket).update(
            count=F("count") + 1
        )
    else:  # a new bucket: this key's buckets out of the window are no longer needed
        SenderRateCounter.objects.filter(**key, bucket__lt=_window_start()).delete()


def new_loop_tag() -> str:
    """The tag a loop bounce carries (subject, header, Message-ID)."""
    return f"KLOOP-{secrets.token_hex(8)}"


def recently_warned(address: str) -> bool:
    """A loop bounce already went to this sender in the window: do not send more."""
    return (
        InboundMail.objects.filter(
            from_address=address, received_at__gte=_window_start()
        )
        .exclude(loop_tag="")
        .exists()
    )
