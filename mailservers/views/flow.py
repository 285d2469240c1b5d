"""The Mail flow page (Settings › Technical › Email): what was sent, deferred,
failed, bounced and received each day of the last 30 days, overall or for one
server, as a server-rendered SVG chart, with each server's totals.

Outgoing figures count recipients by their state and the day of its last change
(``OutgoingRecipient.updated_at``); received counts stored inbound messages
(``InboundMail.received_at``, one row per distinct message). Reads only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from knowlix.decorators import technical_required
from mailservers.models import OutgoingRecipient
from routing.models import InboundMail

DAYS = 30
SERIES = (
    ("sent", "Sent"),
    ("deferred", "Deferred"),
    ("failed", "Failed"),
    ("bounced", "Bounced"),
    ("received", "Received"),
)
OUTGOING = ("sent", "deferred", "failed", "bounced")
DEFAULT_SERVER = "Default server"
NO_MAILBOX = "Pipe and local mailbox"  # mail that came through no incoming server
# Chart geometry (SVG user units; the SVG scales to its box).
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 34, 22, 10


@dataclass
class FlowDay:
    day: dt.date
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    count: int
    title: str


@dataclass
class ServerTotals:
    name: str
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def cells(self) -> list[int]:
        return [self.counts.get(code, 0) for code, _label in SERIES]


def _since(today: dt.date) -> dt.datetime:
    start = today - dt.timedelta(days=DAYS - 1)
    return timezone.make_aware(dt.datetime.combine(start, dt.time.min))


def _server_of(label: str) -> str:
    return label or DEFAULT_SERVER


def mail_flow(*, today: dt.date, server: str = "") -> list[FlowDay]:
    """The last ``DAYS`` days, oldest first, each with a count per series."""
    since = _since(today)
    days = [
        FlowDay(today - dt.timedelta(days=n), {code: 0 for code, _l in SERIES})
        for n in range(DAYS - 1, -1, -1)
    ]
    by_day = {d.day: d for d in days}
    outgoing = OutgoingRecipient.objects.filter(
        updated_at__gte=since, state__in=OUTGOING
    )
    incoming = InboundMail.objects.filter(received_at__gte=since)
    if server:  # mail not sent yet, and the pipe, have no server name of their own
        sending = [server, ""] if server == DEFAULT_SERVER else [server]
        outgoing = outgoing.filter(mail__server_label__in=sending)
        receiving = "" if server == NO_MAILBOX else server
        incoming = incoming.filter(server_name=receiving)
    rows = (
        outgoing.annotate(day=TruncDate("updated_at"))
        .values_list("day", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for day, state, n in rows:
        if day in by_day:
            by_day[day].counts[state] += n
    received = (
        incoming.annotate(day=TruncDate("received_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    for day, n in received:
        if day in by_day:
            by_day[day].counts["received"] += n
    return days


def server_totals(*, today: dt.date) -> list[ServerTotals]:
    """Each server's totals over the same days (sending and receiving servers)."""
    since = _since(today)
    totals: dict[str, ServerTotals] = {}
    rows = (
        OutgoingRecipient.objects.filter(updated_at__gte=since, state__in=OUTGOING)
        .values_list("mail__server_label", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for label, state, n in rows:
        name = _server_of(label)
        totals.setdefault(name, ServerTotals(name)).counts[state] += n
    received = (
        InboundMail.objects.filter(received_at__gte=since)
        .values_list("server_name")
        .annotate(n=Count("id"))
        .order_by()
    )
    for label, n in received:
        name = label or NO_MAILBOX
        totals.setdefault(name, ServerTotals(name)).counts["received"] += n
    return sorted(totals.values(), key=lambda t: t.name.lower())


def chart_bars(days: list[FlowDay]) -> tuple[list[Bar], int]:
    """Grouped bars (one per series and day) and the scale's top value."""
    top = max([max(d.counts.values()) for d in days] + [1])
    slot = (WIDTH - LEFT) / len(days)
    width = slot * 0.8 / len(SERIES)
    plot = HEIGHT - BOTTOM - TOP
    bars = []
    for i, day in enumerate(days):
        for j, (code, label) in enumerate(SERIES):
            count = day.counts[code]
            height = plot * count / top
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + slot * 0.1 + j * width, 2),
                    y=round(TOP + plot - height, 2),
                    width=round(width, 2),
                    height=round(height, 2),
                    series=code,
                    count=count,
                    title=f"{day.day:%d %b}: {count} {label.lower()}",
                )
            )
    return bars, top


@technical_required
def mail_flow_page(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    totals = server_totals(today=today)
    server = request.GET.get("server", "")
    if server not in {t.name for t in totals}:
        server = ""
    days = mail_flow(today=today, server=server)
    bars, top = chart_bars(days)
    sums = {code: sum(d.counts[code] for d in days) for code, _l in SERIES}
    slot = (WIDTH - LEFT) / DAYS
    ticks = [
        (round(LEFT + i * slot + slot / 2, 2), f"{d.day:%d %b}", "middle")
        for i, d in enumerate(days)
        if i % 5 == 0
    ]
    ticks.append((WIDTH, f"{days[-1].day:%d %b}", "end"))
    context = {
        "bars": bars,
        "top": top,
        "series": [(code, label, sums[code]) for code, label in SERIES],
        "totals": totals,
        "server": server,
        "ticks": ticks,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "baseline": HEIGHT - BOTTOM,
        "label_y": HEIGHT - 6,
        "top_y": TOP + 4,
        "days": DAYS,
    }
    return render(request, "mailservers/flow.html", context)


urlpatterns = [path("flow/", mail_flow_page, name="mail-flow")]
