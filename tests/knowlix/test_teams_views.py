"""The Teams settings page: admins create a team, people picked by full name."""

from __future__ import annotations

from django.urls import reverse

from knowlix.models import Team


def test_admin_creates_a_round_robin_team(client, admin_user, alice, bob):
    """The form lists people by full name and saves members and assignment."""
    alice.last_name = "Archer"
    alice.save()
    client.force_login(admin_user)
    page = client.get(reverse("knowlix:team-create"))
    assert "Alice Archer" in page.content.decode()
    assert "---------" not in page.content.decode()
    response = client.post(
        reverse("knowlix:team-create"),
        {"name": "Support", "members": [alice.pk, bob.pk], "assignment": "round_robin"},
    )
    assert response.status_code == 302
    team = Team.objects.get(name="Support")
    assert set(team.members.all()) == {alice, bob}
    listing = client.get(reverse("knowlix:team-list")).content.decode()
    assert "Alice Archer" in listing and "Each member in turn" in listing


def test_default_assignment_needs_an_assignee(client, admin_user):
    """Choosing "the default assignee" without one is refused with a reason."""
    client.force_login(admin_user)
    response = client.post(
        reverse("knowlix:team-create"), {"name": "X", "assignment": "default"}
    )
    assert response.status_code == 200
    assert "Choose who gets the team" in response.content.decode()
    assert not Team.objects.exists()


def test_teams_page_is_for_admins_only(client, alice):
    """A plain user cannot open the Teams page."""
    client.force_login(alice)
    response = client.get(reverse("knowlix:team-list"))
    assert response.status_code in (302, 403, 404)
