"""Loop protection: count what each sender creates and posts in a sliding window.

Counts live in 10-minute buckets (``SenderRateCounter``), so the check is one
aggregate over at most ``minutes / 10`` rows. Users and allow-listed senders are
never limited. Limits are the ``mail.gateway.loop.*`` system parameters.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Sequence

from django.db import connection
from django.db.models import Sum
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


def loop_limit() -> int:
    return params.get_int_param(params.LOOP_LIMIT) or 20


def window_total(*, address: str, scope: str, record: str = "") -> int:
    """What the address counted in the window for ``scope`` and ``record``."""
    total = SenderRateCounter.objects.filter(
        address=address, scope=scope, record=record, bucket__gte=_window_start()
    ).aggregate(total=Sum("count"))["total"]
    return total or 0


def window_totals(*, addresses: Sequence[str], scope: str) -> dict[str, int]:
    """What each address counted in the window for ``scope`` (no record), in one
    query: :func:`window_total` for many senders (absent: 0)."""
    if not addresses:
        return {}
    rows = (
        SenderRateCounter.objects.filter(
            address__in=set(addresses),
            scope=scope,
            record="",
            bucket__gte=_window_start(),
        )
        .values("address")
        .annotate(total=Sum("count"))
        .values_list("address", "total")
    )
    return dict(rows)


def count_messages(*, keys: Sequence[tuple[str, str, str]]) -> None:
    """Add one to the current bucket of each ``(address, scope, record)`` (a key
    given n times adds n), in one upsert."""
    counts = Counter((a, str(s), r) for a, s, r in keys if a)
    if not counts:
        return
    bucket = _bucket(timezone.now())
    qn = connection.ops.quote_name
    table = qn(SenderRateCounter._meta.db_table)
    # A row may be named once per statement (PostgreSQL): keys are summed above.
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(counts))
    params_: list[str | int | None] = []
    adapted = connection.ops.adapt_datetimefield_value(bucket)
    for (address, scope, record), n in counts.items():
        params_ += [address, scope, record, adapted, n]
    key = ", ".join(map(qn, ["address", "scope", "record", "bucket"]))
    count = qn("count")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key}, {count}) VALUES {values}"  # noqa: S608
            f" ON CONFLICT ({key}) DO UPDATE"
            f" SET {count} = {table}.{count} + EXCLUDED.{count}",
            params_,
        )
    _prune_occasionally(bucket)


_pruned_before: dt.datetime | None = None


def _prune_occasionally(bucket: dt.datetime) -> None:
    """Drop buckets out of the window, once per bucket period and process (not per
    message): old rows only cost space, since the check sums the window alone."""
    global _pruned_before
    if _pruned_before == bucket:
        return
    _pruned_before = bucket
    SenderRateCounter.objects.filter(bucket__lt=_window_start()).delete()


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
