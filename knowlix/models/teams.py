"""Teams: the people who hear about the records an alias or a mail server creates.

A team's members follow every record created for it (so they get its mail in their
inbox, or by email if they prefer) and its records may be assigned to a default
member or to each member in turn. ``last_assigned`` is the round-robin's position;
it is moved only under a row lock (``knowlix.teams.pick_assignee``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    class Assignment(models.TextChoices):
        NONE = "none", _("Nobody (the team follows)")
        DEFAULT = "default", _("The default assignee")
        ROUND_ROBIN = "round_robin", _("Each member in turn")

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="knowlix_teams"
    )
    assignment = models.CharField(
        max_length=20, choices=Assignment.choices, default=Assignment.NONE
    )
    default_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
