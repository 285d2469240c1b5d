"""One date style: relative, exact on hover, never "0 minutes ago"."""

from __future__ import annotations

import datetime as dt

from django.template import Context, Template
from django.utils import timezone

from knowlix.templatetags.knowlix_dates import relative


def render(value: object) -> str:
    return Template("{{ value|when }}").render(Context({"value": value}))


def test_just_now_instead_of_zero_minutes():
    """Within a minute, either way, it reads "just now"."""
    now = timezone.now()
    assert relative(now - dt.timedelta(seconds=20), now) == "just now"
    assert relative(now + dt.timedelta(seconds=20), now) == "just now"


def test_past_and_future_in_one_unit():
    """Three hours and ten minutes ago reads "3 hours ago"; later reads "in 2 days"."""
    now = timezone.now()
    assert relative(now - dt.timedelta(hours=3, minutes=10), now) == "3\xa0hours ago"
    assert relative(now + dt.timedelta(days=2, hours=1), now) == "in 2\xa0days"


def test_exact_time_on_hover_in_local_time(settings):
    """The title holds the exact local date and time; the text is relative."""
    settings.TIME_ZONE = "Europe/Brussels"
    value = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    html = render(value)
    assert 'title="2026-07-01 12:00"' in html
    assert 'datetime="2026-07-01T10:00:00+00:00"' in html
    assert "ago</time>" in html


def test_days_read_today_or_tomorrow_and_empty_shows_default():
    """A due date today reads "today"; nothing renders the given default."""
    assert ">today</time>" in render(timezone.localdate())
    assert ">tomorrow</time>" in render(timezone.localdate() + dt.timedelta(days=1))
    assert Template('{{ value|when:"never" }}').render(Context({"value": None})) == (
        "never"
    )
