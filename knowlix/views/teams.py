"""Teams (Settings, admins): who follows and handles the records an alias or an
incoming server creates."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from knowlix.decorators import admin_required
from knowlix.forms import TeamForm
from knowlix.models import Team


@admin_required
def team_list(request: HttpRequest) -> HttpResponse:
    teams = Team.objects.prefetch_related("members").select_related("default_assignee")
    return render(request, "knowlix/team_list.html", {"teams": teams})


@admin_required
def team_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk) if pk is not None else None
    if request.method == "POST" and team is not None and "delete" in request.POST:
        team.delete()
        messages.success(request, f"Team {team.name} deleted.")
        return redirect("knowlix:team-list")
    form = TeamForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        team = form.save()
        messages.success(request, f"Team {team.name} saved.")
        return redirect("knowlix:team-list")
    return render(request, "knowlix/team_form.html", {"form": form, "team": team})
