"""The one date style of every page: relative ("3 hours ago", "just now", "in 2
days"), with the exact local date and time on hover. A built-in of the template
engine (``TEMPLATES`` in settings): ``{{ value|when }}``."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

register = template.Library()

JUST_NOW_SECONDS = 60


def relative(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """ "just now" within a minute, else "N units ago" / "in N units" (one unit)."""
    now = now or timezone.now()
    seconds = (now - value).total_seconds()
    if abs(seconds) < JUST_NOW_SECONDS:
        return _("just now")
    if seconds > 0:
        return _("%(delta)s ago") % {"delta": timesince(value, now, depth=1)}
    return _("in %(delta)s") % {"delta": timeuntil(value, now, depth=1)}


def exact(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, "Y-m-d H:i")
    return date_format(value, "Y-m-d")


@register.filter
def when(value: dt.datetime | dt.date | None, empty: str = "") -> SafeString | str:
    """``<time>`` with the relative text and the exact date as its title."""
    if not value:
        return empty
    if not isinstance(value, dt.datetime):  # a day: "today", "tomorrow", or the day
        today = timezone.localdate()
        days = (value - today).days
        text = {0: _("today"), 1: _("tomorrow"), -1: _("yesterday")}.get(days)
        text = text or date_format(value, "j M Y")
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            value.isoformat(),
            exact(value),
            text,
        )
    # data-relative: static/js/when.js keeps the text true on a page left open.
    return format_html(
        '<time datetime="{}" title="{}" data-relative>{}</time>',
        value.isoformat(),
        exact(value),
        relative(value),
    )
