"""`manage.py demo` loads everything a first visit needs, once."""

from django.contrib.auth.models import User
from django.core.management import call_command

from dnscheck.models import DkimKey
from knowlix.models import Ticket
from routing.models import Alias


def test_demo_is_idempotent_and_complete(db):
    """Twice in a row: same rows; admin can log in; aliases and a DKIM key exist."""
    call_command("demo")
    counts = (Ticket.objects.count(), User.objects.count(), Alias.objects.count())
    call_command("demo")
    assert (
        Ticket.objects.count(),
        User.objects.count(),
        Alias.objects.count(),
    ) == counts
    assert User.objects.get(username="admin").check_password("admin")
    assert {"helpdesk", "sales", "expenses", "jobs"} <= set(
        Alias.objects.values_list("name", flat=True)
    )
    assert DkimKey.objects.count() == 1
    assert counts[0] >= 2
