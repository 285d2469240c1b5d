"""Module aliases on a fresh install, alias status (invalid when something it points
at is deleted, its creator told once), the followers policy on creating aliases, and
refusal texts that say what each policy checks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from feed.models import Notification
from feed.services import follow
from feed.services import records as record_services
from knowlix.models import JobApplication, Project, Ticket
from mailservers.models import OutgoingMail
from routing.models import Alias, UnprocessedMail
from tests.routing.conftest import MODULE_ALIASES, eml
from tests.routing.test_views import developer as developer  # noqa: F401, PLC0414

ROOT = Path(__file__).resolve().parent.parent.parent


def to_alias(n: int, *, sender: str, to: str, auth: str = "") -> bytes:
    raw = eml("to_alias.eml", n=n, to=to, subject=f"Hello {n}", **{"from": sender})
    if auth:  # the trusted gateway's verdict on the sender
        raw = (
            b"Authentication-Results: mx.example.com; dmarc=%s\r\n" % auth.encode()
            + raw
        )
    return raw


def manage(*args: str, var_dir: Path) -> None:
    """``manage.py`` on its own SQLite database, as on a fresh install."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{var_dir / 'fresh.sqlite3'}",
        "KNOWLIX_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "knowlix.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_fresh_install_has_the_module_aliases_and_keeps_deleted_ones_deleted(
    tmp_path,
):
    """migrate on an empty database creates helpdesk@, sales@, expenses@, jobs@; one
    deleted stays deleted through another migrate and the demo."""
    manage("migrate", "--no-input", var_dir=tmp_path)
    db = sqlite3.connect(tmp_path / "fresh.sqlite3")
    query = (
        "SELECT a.name, c.app_label, c.model FROM routing_alias a"
        " JOIN django_content_type c ON c.id = a.content_type_id ORDER BY a.name"
    )
    assert db.execute(query).fetchall() == sorted(
        (name, "knowlix", model) for name, model in MODULE_ALIASES.items()
    )
    db.execute("DELETE FROM routing_alias WHERE name = 'sales'")
    db.commit()
    manage("migrate", "--no-input", var_dir=tmp_path)
    manage("demo", var_dir=tmp_path)
    names = [row[0] for row in db.execute("SELECT name FROM routing_alias")]
    assert sorted(names) == ["expenses", "helpdesk", "jobs"]
    db.close()


def test_module_alias_can_be_edited_and_deleted(developer, aliases):
    """A module alias is an ordinary alias: edited, then deleted, from its page."""
    helpdesk = aliases["helpdesk"]
    response = developer.post(
        reverse("routing:alias-edit", args=[helpdesk.pk]),
        {
            "name": "support",
            "content_type": helpdesk.content_type_id,
            "defaults": "{}",
            "contact_policy": "known",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Alias.objects.get(pk=helpdesk.pk).name == "support"
    developer.post(reverse("routing:alias-edit", args=[helpdesk.pk]), {"delete": "1"})
    assert not Alias.objects.filter(pk=helpdesk.pk).exists()


def test_alias_page_shows_kind_policy_and_status(developer, aliases, alice):
    """Each row names its record kind and policy; an alias whose default points at
    a deleted user is shown invalid with the reason."""
    Alias.objects.filter(name="sales").update(
        defaults={"owner": alice.pk}, contact_policy="known"
    )
    page = developer.get(reverse("routing:alias-list")).content.decode()
    for kind in ("Helpdesk ticket", "Opportunity", "Expense", "Job application"):
        assert f"<td>{kind}</td>" in page
    assert "Known contacts" in page and "Everyone" in page
    assert page.count(">Active<") == 4
    alice_id = alice.pk
    alice.delete()
    page = developer.get(reverse("routing:alias-list")).content.decode()
    assert page.count(">Active<") == 3
    assert ">Invalid<" in page
    assert f"points at a deleted user #{alice_id}" in page


def test_mail_to_an_invalid_alias_is_quarantined_and_its_creator_told_once(
    aliases, route, alice, bob
):
    """The alias's creator gets one notice; the mail waits in quarantine."""
    alias = aliases["helpdesk"]
    alias.created_by = alice
    alias.defaults = {"assignee": bob.pk}
    alias.save()
    bob.delete()
    first = route(
        to_alias(1, sender="dana@customer.example", to="helpdesk@example.com")
    )
    second = route(
        to_alias(2, sender="dana@customer.example", to="helpdesk@example.com")
    )
    assert first.outcome == second.outcome == "quarantined"
    assert "points at a deleted user" in first.reason
    assert UnprocessedMail.objects.count() == 2
    assert not Ticket.objects.exists()
    (notice,) = Notification.objects.filter(user=alice)
    assert "helpdesk" in notice.message.subject
    assert Alias.objects.get(pk=alias.pk).last_error == first.reason


def test_default_naming_a_user_fills_the_record(aliases, route, bob):
    """{"assignee": <user id>} in an alias's defaults assigns its records."""
    Alias.objects.filter(name="helpdesk").update(defaults={"assignee": bob.pk})
    result = route(
        to_alias(3, sender="dana@customer.example", to="helpdesk@example.com")
    )
    assert result.outcome == "routed"
    assert Ticket.objects.get().assignee == bob


@pytest.fixture
def project_jobs(aliases, alice, make_contact):
    """jobs-acme@: creates job applications, for followers of the Acme project."""
    project = record_services.create_record(record=Project(name="Acme"), author=alice)
    follow(record=project, contact=make_contact("Rita", "rita@recruit.example"))
    Alias.objects.create(
        name="jobs-acme",
        content_type=ContentType.objects.get_for_model(JobApplication),
        parent_content_type=ContentType.objects.get_for_model(Project),
        parent_object_id=project.pk,
        contact_policy=Alias.ContactPolicy.FOLLOWERS,
    )
    return project


def test_followers_policy_on_a_creating_alias_accepts_the_parents_followers(
    project_jobs, route
):
    """A follower of the parent project creates an application through the alias."""
    result = route(
        to_alias(
            4, sender="rita@recruit.example", to="jobs-acme@example.com", auth="pass"
        )
    )
    assert result.outcome == "routed"
    assert result.routes[0].action == "created"
    assert JobApplication.objects.get().email == "rita@recruit.example"


def test_followers_policy_on_a_creating_alias_refuses_others_saying_why(
    project_jobs, route
):
    """A stranger is refused, and told the alias takes followers of Acme only."""
    result = route(
        to_alias(5, sender="stranger@else.example", to="jobs-acme@example.com")
    )
    assert result.outcome == "refused"
    assert "followers of" in result.reason and "Acme" in result.reason
    assert "known" not in result.reason
    assert not JobApplication.objects.exists()
    assert b"followers of" in bytes(OutgoingMail.objects.get().raw)


def test_known_policy_refusal_says_it_checks_known_senders(aliases, route):
    """The known-contacts refusal speaks of known contacts, not followers."""
    Alias.objects.filter(name="sales").update(contact_policy="known")
    result = route(to_alias(6, sender="stranger@else.example", to="sales@example.com"))
    assert result.outcome == "refused"
    assert "known contacts" in result.reason and "followers" not in result.reason


def test_followers_policy_needs_a_parent_record(developer, aliases):
    """The form refuses "Followers only" on a creating alias without a parent."""
    response = developer.post(
        reverse("routing:alias-create"),
        {
            "name": "vip",
            "content_type": ContentType.objects.get_for_model(Ticket).pk,
            "defaults": "{}",
            "contact_policy": "followers",
            "is_active": "on",
        },
    )
    assert response.status_code == 400
    assert "needs a parent record" in response.content.decode()
    assert not Alias.objects.filter(name="vip").exists()


def test_new_alias_is_its_creators(developer, aliases, admin_user):
    """An alias created on the page records who created it (told of problems)."""
    developer.post(
        reverse("routing:alias-create"),
        {
            "name": "billing",
            "content_type": ContentType.objects.get_for_model(Ticket).pk,
            "defaults": "{}",
            "contact_policy": "everyone",
            "is_active": "on",
        },
    )
    assert Alias.objects.get(name="billing").created_by == admin_user


BAD_DEFAULTS = [
    ({"id": 5}, "cannot be set"),
    ({"reply_token": "same"}, "cannot be set"),
    ({"created_at": "2020-01-01"}, "cannot be set"),
    ({"stage": "bogus"}, "not a valid choice"),
    ({"expected_revenue": "abc"}, "must be a decimal number"),
]


@pytest.mark.parametrize(("defaults", "reason"), BAD_DEFAULTS)
def test_alias_with_a_bad_default_value_is_invalid_and_its_creator_told(
    aliases, route, alice, defaults, reason
):
    """A default the record cannot take (its id, a wrong choice, not a number) makes
    the alias invalid: mail waits in quarantine with the reason, the creator is
    told, and no record is written with it."""
    from knowlix.models import Opportunity

    Alias.objects.filter(name="sales").update(defaults=defaults, created_by=alice)
    result = route(to_alias(1, sender="dana@customer.example", to="sales@example.com"))
    assert result.outcome == "quarantined"
    assert "The alias sales is invalid" in result.reason and reason in result.reason
    assert not Opportunity.objects.exists()
    (notice,) = Notification.objects.filter(user=alice)
    assert "sales" in notice.message.subject


@pytest.mark.parametrize(("defaults", "reason"), BAD_DEFAULTS)
def test_alias_form_refuses_a_bad_default_value(developer, aliases, defaults, reason):
    """The Aliases page refuses the same defaults, with the same reason."""
    import json

    from knowlix.models import Opportunity

    response = developer.post(
        reverse("routing:alias-create"),
        {
            "name": "quotes",
            "content_type": ContentType.objects.get_for_model(Opportunity).pk,
            "defaults": json.dumps(defaults),
            "contact_policy": "everyone",
            "is_active": "on",
        },
    )
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Alias.objects.filter(name="quotes").exists()
