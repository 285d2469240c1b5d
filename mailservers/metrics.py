"""Prometheus series of the mail servers, read from the database at each scrape.

Every worker and web process answers the same figures (they come from the rows,
not from one process's memory). Counters count rows that are kept: sent, failed
and bounced mail is never deleted, so they only grow.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mailservers.models import IncomingServer, OutgoingMail, OutgoingRecipient


class MailCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from _queue()
        yield from _per_server()
        yield from _incoming()


def _queue() -> Iterator[GaugeMetricFamily]:
    depth = GaugeMetricFamily(
        "knowlix_outgoing_queue_mails",
        "Outgoing mails by state.",
        labels=["state"],
    )
    counts = dict(
        OutgoingMail.objects.values_list("state").annotate(n=Count("id")).order_by()
    )
    for state in OutgoingMail.State.values:
        depth.add_metric([state], counts.get(state, 0))
    yield depth
    waiting = [OutgoingMail.State.QUEUED, OutgoingMail.State.DEFERRED]
    oldest = OutgoingMail.objects.filter(state__in=waiting).aggregate(
        at=Min("created_at")
    )["at"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "knowlix_outgoing_oldest_queued_age_seconds",
        "Age of the oldest mail waiting to be sent (0 when none waits).",
        value=max(age, 0.0),
    )


def _per_server() -> Iterator[CounterMetricFamily]:
    sent = CounterMetricFamily(
        "knowlix_outgoing_sent", "Mails sent, by server.", labels=["server"]
    )
    failed = CounterMetricFamily(
        "knowlix_outgoing_failed",
        "Mails that failed for good, by server.",
        labels=["server"],
    )
    rows = (
        OutgoingMail.objects.filter(
            state__in=[OutgoingMail.State.SENT, OutgoingMail.State.FAILED]
        )
        .values_list("server_label", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for label, state, n in rows:
        family = sent if state == OutgoingMail.State.SENT else failed
        family.add_metric([label or "default"], n)
    yield sent
    yield failed
    bounced = OutgoingRecipient.objects.filter(
        state=OutgoingRecipient.State.BOUNCED
    ).count()
    yield CounterMetricFamily(
        "knowlix_outgoing_bounces", "Recipients whose mail bounced.", value=bounced
    )


def _incoming() -> Iterator[GaugeMetricFamily]:
    last = GaugeMetricFamily(
        "knowlix_incoming_last_success_timestamp_seconds",
        "Unix time of the last successful poll, by incoming server (0: never).",
        labels=["server"],
    )
    for name, at in IncomingServer.objects.values_list("name", "last_success_at"):
        last.add_metric([name], at.timestamp() if at else 0.0)
    yield last
