"""Give a record being created its team: followers and, if the team says so, an
assignee (the default one, or each active member in turn).

Call :func:`apply_team` on the unsaved record, inside the transaction that creates
it (``feed.services.create_record(s)``): the round-robin locks the team's row, so
two workers creating records at once never pick the same position.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from knowlix.models import Record, Team


def team_members(team: Team) -> list[User]:
    """The team's active members by id, read once per team object."""
    cached = getattr(team, "_active_members", None)
    if cached is None:
        cached = list(team.members.filter(is_active=True).order_by("pk"))
        team._active_members = cached  # type: ignore[attr-defined]
    return cached


def pick_assignee(*, team: Team) -> User | None:
    """Who the team's next record goes to (None: nobody). Call inside a
    transaction; the round-robin locks the team's row and moves its position."""
    if team.assignment == Team.Assignment.DEFAULT:
        user = team.default_assignee
        return user if user is not None and user.is_active else None
    if team.assignment != Team.Assignment.ROUND_ROBIN:
        return None
    members = team_members(team)
    if not members:
        return None
    last = (
        Team.objects.select_for_update()
        .filter(pk=team.pk)
        .values_list("last_assigned_id", flat=True)
        .first()
    )
    chosen = next((m for m in members if last is not None and m.pk > last), None)
    chosen = chosen or members[0]
    Team.objects.filter(pk=team.pk).update(last_assigned=chosen)
    return chosen


def apply_team(*, record: Record, team: Team) -> None:
    """Make ``team``'s members follow the (unsaved) ``record`` once created, and
    assign it unless its assignee is set already (e.g. by an alias's defaults)."""
    record.team_followers = tuple(team_members(team))
    field = record.ASSIGNEE_FIELD
    if getattr(record, f"{field}_id", None) is None:
        assignee = pick_assignee(team=team)
        if assignee is not None:
            setattr(record, field, assignee)
