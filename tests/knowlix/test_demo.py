"""`manage.py demo` loads everything a first visit needs, once."""

import io
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from dnscheck.models import DkimKey
from feed.models import Message
from feed.services import post_message
from knowlix import params
from knowlix.models import Ticket
from knowlix.users import get_profile
from mailservers.models import CaughtMail
from routing.models import Alias, InboundMail
from tests.mailservers.test_localmailbox_routing import (  # the same fixture
    eager_celery,  # noqa: F401
)
from tests.routing.conftest import ensure_module_aliases


@pytest.fixture(autouse=True)
def fresh_params() -> Iterator[None]:
    """System parameters cached by an earlier test were rolled back with it."""
    params.clear_cache()
    yield
    params.clear_cache()


def quiet_demo() -> None:
    with open("/dev/null", "w") as devnull:  # noqa: PTH123
        call_command("demo", stdout=devnull)


def test_demo_is_idempotent_and_complete(db):
    """Twice in a row: same rows; admin can log in; a DKIM key exists; the module
    aliases are the migration's, and one deleted is not created again."""
    ensure_module_aliases()
    Alias.objects.filter(name="sales").delete()
    quiet_demo()
    counts = (Ticket.objects.count(), User.objects.count(), Alias.objects.count())
    emails = dict(User.objects.values_list("username", "email"))
    quiet_demo()
    assert (
        Ticket.objects.count(),
        User.objects.count(),
        Alias.objects.count(),
    ) == counts
    assert dict(User.objects.values_list("username", "email")) == emails
    assert User.objects.get(username="admin").check_password("admin")
    assert set(Alias.objects.values_list("name", flat=True)) == {
        "helpdesk",
        "expenses",
        "jobs",
    }
    assert DkimKey.objects.count() == 1
    assert counts[0] >= 2


def test_demo_users_are_outside_the_catchall_domain(db):
    """Users' addresses are in another domain than the catch-all (and its aliases)."""
    quiet_demo()
    catchall = params.catchall_domain()
    assert catchall == "example.com"
    emails = dict(User.objects.values_list("username", "email"))
    assert emails == {
        "admin": "admin@yourcompany.example",
        "marc": "marc@yourcompany.example",
    }


def test_demo_moves_the_old_catchall_addresses(db):
    """A database loaded by an older demo converges; an address a user chose stays."""
    User.objects.create_user("admin", email="admin@example.com", is_staff=True)
    User.objects.create_user("marc", email="Marc@Example.com")
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert "Moved marc's address Marc@example.com to marc@yourcompany.example" in (
        out.getvalue()
    )
    assert User.objects.get(username="admin").email == "admin@yourcompany.example"
    assert User.objects.get(username="marc").email == "marc@yourcompany.example"
    User.objects.filter(username="marc").update(email="marc@elsewhere.example")
    quiet_demo()
    assert User.objects.get(username="marc").email == "marc@elsewhere.example"


def test_demo_avoids_a_catchall_set_to_its_users_domain(db):
    """If the catch-all is the users' usual domain, the users go to a subdomain."""
    params.set_param(params.CATCHALL_DOMAIN, "yourcompany.example")
    quiet_demo()
    emails = set(User.objects.values_list("email", flat=True))
    assert emails == {
        "admin@staff.yourcompany.example",
        "marc@staff.yourcompany.example",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("mailcatcher", "eager_celery")
def test_demo_notification_to_a_colleague_is_caught_not_routed_back():
    """marc's notification mail is caught locally and not posted again on the ticket."""
    quiet_demo()
    admin = User.objects.get(username="admin")
    marc = User.objects.get(username="marc")
    profile = get_profile(marc)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save(update_fields=["notify_by"])
    ticket = Ticket.objects.get(assignee=marc)
    feed = Message.objects.filter(content_type__model="ticket", object_id=ticket.pk)
    before = feed.count()
    post_message(
        record=ticket,
        kind=Message.Kind.NOTE,
        author=admin,
        body_html="<p>Marc, the new chair ships on Monday.</p>",
    )
    caught = CaughtMail.objects.get(rcpt_tos=[marc.email])
    assert "new chair ships" in bytes(caught.raw).decode()
    assert caught.routing_outcome == ""
    assert not InboundMail.objects.exists()
    assert feed.count() == before + 1  # the note, not a copy of it


def test_demo_sets_a_helpdesk_team_on_helpdesk_alias(db):
    """The demo's helpdesk@ alias names the Helpdesk team (admin and marc, in turn)."""
    quiet_demo()
    quiet_demo()
    alias = Alias.objects.select_related("team").get(name="helpdesk")
    assert alias.team is not None and alias.team.name == "Helpdesk"
    members = set(alias.team.members.values_list("username", flat=True))
    assert members == {"admin", "marc"}
    assert alias.team.assignment == "round_robin"
