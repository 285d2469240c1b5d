"""Per-user preferences and system parameters."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserProfile(models.Model):
    class NotifyBy(models.TextChoices):
        EMAIL = "email", _("By email")
        INBOX = "inbox", _("In Knowlix")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    notify_by = models.CharField(
        max_length=10, choices=NotifyBy.choices, default=NotifyBy.INBOX
    )
    developer_mode = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    @property
    def prefers_email(self) -> bool:
        return self.notify_by == self.NotifyBy.EMAIL


class SystemParameter(models.Model):
    """A key/value row; read through ``knowlix.params.get_param`` (cached)."""

    key = models.CharField(max_length=100, unique=True)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Heartbeat(models.Model):
    """The last sign of life of a singleton process (``beat``), for health checks.

    One row per name; ``stopped_at`` is set when the process stops cleanly, so a
    stopped beat is reported at once rather than when its heartbeat grows old.
    """

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
