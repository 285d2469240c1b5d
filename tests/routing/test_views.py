"""The Aliases and Unprocessed mail technical pages."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from knowlix.models import Team, Ticket
from routing.models import Alias, InboundMail, UnprocessedMail
from tests.routing.conftest import eml


@pytest.fixture
def developer(tech_client):
    return tech_client


def test_pages_need_developer_mode(client, alice, aliases):
    """An employee gets 403 on the technical pages."""
    client.force_login(alice)
    assert client.get(reverse("routing:alias-list")).status_code == 403
    assert client.get(reverse("routing:unprocessed-list")).status_code == 403


def test_alias_list_shows_module_aliases(developer, aliases):
    """The Aliases page lists helpdesk@, sales@, expenses@ and jobs@."""
    page = developer.get(reverse("routing:alias-list")).content.decode()
    for name in ("helpdesk@example.com", "sales@example.com", "expenses@example.com"):
        assert name in page
    assert "jobs@example.com" in page


def test_alias_can_be_created_and_edited(developer, aliases):
    """A new alias is saved lower-case; a bad default field is refused."""
    ct = ContentType.objects.get_for_model(Ticket)
    response = developer.post(
        reverse("routing:alias-create"),
        {
            "name": "Billing",
            "content_type": ct.pk,
            "defaults": '{"priority": "high"}',
            "contact_policy": "known",
            "bounce_message": "Customers only.",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    alias = Alias.objects.get(name="billing")
    assert alias.defaults == {"priority": "high"}
    bad = developer.post(
        reverse("routing:alias-edit", args=[alias.pk]),
        {
            "name": "billing",
            "content_type": ct.pk,
            "defaults": '{"colour": "red"}',
            "contact_policy": "known",
            "is_active": "on",
        },
    )
    assert bad.status_code == 400
    assert "colour" in bad.content.decode()


def test_reserved_alias_names_are_refused(developer, aliases):
    """bounce@ and reply+ belong to the pipeline."""
    ct = ContentType.objects.get_for_model(Ticket)
    for name in ("bounce", "reply"):
        response = developer.post(
            reverse("routing:alias-create"),
            {
                "name": name,
                "content_type": ct.pk,
                "contact_policy": "everyone",
                "defaults": "{}",
            },
        )
        assert response.status_code == 400


def quarantine(route) -> UnprocessedMail:
    route(
        eml("unknown_address.eml").replace(
            b"nobody-here@example.com", b"x@other.example"
        )
    )
    return UnprocessedMail.objects.get()


def test_unprocessed_page_lists_and_shows_raw(developer, aliases, route):
    """Quarantined mail is listed with its reason and raw bytes."""
    row = quarantine(route)
    listing = developer.get(reverse("routing:unprocessed-list")).content.decode()
    assert "Is anyone there?" in listing and "No route" in listing
    detail = developer.get(reverse("routing:unprocessed-detail", args=[row.pk]))
    assert "Writing to an address that does not exist" in detail.content.decode()
    raw = developer.get(reverse("routing:unprocessed-raw", args=[row.pk]))
    assert raw.content == bytes(row.inbound.raw)


def test_reprocess_routes_after_the_configuration_is_fixed(developer, aliases, route):
    """After adding the missing alias, Reprocess creates the ticket."""
    row = quarantine(route)
    fail = developer.post(reverse("routing:unprocessed-reprocess", args=[row.pk]))
    assert fail.status_code == 302
    assert UnprocessedMail.objects.get().attempts == 2
    Alias.objects.create(
        name="x", content_type=ContentType.objects.get_for_model(Ticket)
    )
    from knowlix import params

    params.set_param(params.CATCHALL_DOMAIN, "other.example")
    developer.post(reverse("routing:unprocessed-reprocess", args=[row.pk]))
    assert not UnprocessedMail.objects.exists()
    assert InboundMail.objects.get().outcome == "routed"
    assert Ticket.objects.get().subject == "Is anyone there?"


def test_discard_drops_the_message_on_purpose(developer, aliases, route):
    """Discard empties the quarantine and says who discarded it."""
    row = quarantine(route)
    developer.post(reverse("routing:unprocessed-discard", args=[row.pk]))
    assert not UnprocessedMail.objects.exists()
    inbound = InboundMail.objects.get()
    # By full name, as everywhere (the admin persona is "Admin").
    assert inbound.outcome == "ignored" and "by Admin." in inbound.reason


def test_alias_names_a_team(developer, aliases):
    """The alias form offers teams ("No team" when none) and saves the choice; the
    list shows it."""
    team = Team.objects.create(name="Billing desk")
    ct = ContentType.objects.get_by_natural_key("knowlix", "ticket")
    page = developer.get(reverse("routing:alias-create")).content.decode()
    assert "No team" in page and "Billing desk" in page and "---------" not in page
    response = developer.post(
        reverse("routing:alias-create"),
        {
            "name": "billing",
            "content_type": ct.pk,
            "defaults": "{}",
            "contact_policy": "everyone",
            "team": team.pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    assert Alias.objects.get(name="billing").team == team
    assert (
        "Billing desk" in developer.get(reverse("routing:alias-list")).content.decode()
    )
