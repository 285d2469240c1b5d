"""Prometheus series of routing: received mail by outcome (read at each scrape)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from routing.models import InboundMail


class RoutingCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "knowlix_incoming_mail",
            "Received mails by what routing made of them.",
            labels=["outcome"],
        )
        counts = dict(
            InboundMail.objects.values_list("outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
        for outcome in InboundMail.Outcome.values:
            family.add_metric([outcome], counts.get(outcome, 0))
        yield family
