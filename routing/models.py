"""Models of mail routing: aliases, every inbound message kept raw, quarantine, rates.

``InboundMail`` is written before routing starts and is unique by sha256, so the same
bytes are never routed twice and a message is never lost: if routing fails, the row
keeps the raw bytes and an ``UnprocessedMail`` row puts it in quarantine.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from knowlix.models import Record
from knowlix.users import is_admin


class Alias(models.Model):
    """``name@<catch-all domain>``: where mail to that address goes."""

    class ContactPolicy(models.TextChoices):
        EVERYONE = "everyone", _("Everyone")
        KNOWN = "known", _("Known contacts")
        FOLLOWERS = "followers", _("Followers only")

    name = models.CharField(
        max_length=64, unique=True, help_text=_("Local part, e.g. helpdesk")
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("record kind"),
    )
    # Post every mail on this record instead of creating one (same kind).
    object_id = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name=_("fixed record id")
    )
    defaults = models.JSONField(default=dict, blank=True)
    # Whose followers the *followers* policy accepts (e.g. the project whose
    # tickets the alias creates); a fixed record is its own parent.
    parent_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("parent record kind"),
    )
    parent_object_id = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name=_("parent record id")
    )
    contact_policy = models.CharField(
        max_length=20, choices=ContactPolicy.choices, default=ContactPolicy.EVERYONE
    )
    bounce_message = models.TextField(
        blank=True, help_text=_("Sent to refused senders; a polite default if empty.")
    )
    # Its members follow every record the alias creates; it may assign them.
    team = models.ForeignKey(
        "knowlix.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who follows (and may be assigned) every record it creates."),
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The configuration problem routing last met (its creator was told once).
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = _("aliases")
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["parent_content_type", "parent_object_id"]),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = self.name.strip().lower()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("routing:alias-edit", args=[self.pk])

    def can_be_opened_by(self, user: User | AnonymousUser) -> bool:
        """Admins open an alias (a notice about it links there)."""
        return is_admin(user)

    @property
    def model(self) -> type[Record] | None:
        """The record kind, or None if its content type is gone or no record kind
        (the form offers only record kinds)."""
        return _record_model(self.content_type)

    @property
    def kind_label(self) -> str:
        """The record kind as people say it ("Helpdesk ticket"), "" if gone."""
        model = self.model
        return str(model._meta.verbose_name).capitalize() if model else ""

    @property
    def creates_records(self) -> bool:
        return self.object_id is None

    def fixed_record(self) -> Record | None:
        """The record every mail is posted on (None: it creates records, or the
        record is gone)."""
        model = self.model
        if self.object_id is None or model is None:
            return None
        return model._default_manager.filter(pk=self.object_id).first()

    def parent_record(self) -> Record | None:
        """Whose followers the *followers* policy accepts: the parent record, else
        the fixed record (None if there is none, or it is gone)."""
        if self.parent_content_type_id is None:
            return self.fixed_record()
        model = _record_model(self.parent_content_type)
        if self.parent_object_id is None or model is None:
            return None
        return model._default_manager.filter(pk=self.parent_object_id).first()


def _record_model(content_type: ContentType | None) -> type[Record] | None:
    model = content_type.model_class() if content_type is not None else None
    return model if model is not None and issubclass(model, Record) else None


class InboundMail(models.Model):
    """One received message: its raw bytes, identity and what routing made of it."""

    class Outcome(models.TextChoices):
        RECEIVED = "received", _("Received")  # stored, routing not finished
        ROUTED = "routed", _("Routed")
        BOUNCE = "bounce", _("Bounce")
        DUPLICATE = "duplicate", _("Duplicate")
        REFUSED = "refused", _("Refused")
        IGNORED = "ignored", _("Ignored")
        QUARANTINED = "quarantined", _("Quarantined")

    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, unique=True)
    # Indexed on its own too: SQLite uses a partial index only for its exact condition.
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    knowlix_message_id = models.CharField(max_length=998, blank=True)
    source = models.CharField(max_length=60, blank=True)
    server_name = models.CharField(max_length=200, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    outcome = models.CharField(
        max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED
    )
    reason = models.TextField(blank=True)
    # [{"action": "created"|"posted", "record": "knowlix.ticket:4", "message": 9}]
    routes = models.JSONField(default=list, blank=True)
    # A loop-protection bounce we sent carries this tag; replies to it are ignored.
    loop_tag = models.CharField(max_length=40, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)  # a bounce reply queued
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["outcome", "-received_at"])]
        constraints = [
            # Two copies of one message routed at once: the second store fails.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="inbound_message_id_unique",
            )
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"inbound #{self.pk}"


class UnprocessedMail(models.Model):
    """Quarantine: a message that could not be parsed or routed, kept for a human."""

    inbound = models.OneToOneField(
        InboundMail, on_delete=models.CASCADE, related_name="unprocessed"
    )
    reason = models.TextField()
    detail = models.TextField(blank=True)  # exception type and message, no traceback
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_attempt_at", "-id"]
        verbose_name_plural = _("unprocessed mail")

    def __str__(self) -> str:
        return f"{self.inbound} ({self.reason[:40]})"


class SenderRateCounter(models.Model):
    """Messages from one sender per 10-minute bucket, for loop detection.

    ``scope`` "create" counts records the sender created (``record`` empty); "post"
    counts messages posted on one record. The window sums the recent buckets.
    """

    class Scope(models.TextChoices):
        CREATE = "create", _("Records created")
        POST = "post", _("Messages on one record")

    address = models.CharField(max_length=320)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    record = models.CharField(max_length=100, blank=True)  # "knowlix.ticket:42"
    bucket = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["address", "scope", "record", "bucket"],
                name="sender_rate_bucket_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} {self.scope} {self.bucket:%H:%M} = {self.count}"
