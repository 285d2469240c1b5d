"""Incoming mail servers (IMAP/POP3) and the messages fetched from them.

``FetchedMessage`` is the exactly-once ledger: a row is written in the same
transaction as the routed message, *before* any flag, move or delete reaches the
server, and is unique per (server, UIDVALIDITY, UID) or (server, UIDL). Polls of one
server are serialised by a lease on its row (``poll_token``/``poll_lease_until``),
claimed with a conditional UPDATE so it works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from knowlix.crypto import EncryptedTextField
from knowlix.users import is_admin

# Beat asks which servers are due once a minute (knowlix.celery), and a poll starts
# a few seconds after the tick that queued it: the next tick then comes a little
# less than one interval after that start. Half a tick of slack keeps a 1-minute
# server on every tick instead of every other one (polls were 120 s apart).
POLL_DUE_SLACK = dt.timedelta(seconds=30)

__all__ = ["FetchedMessage", "IncomingServer"]


class IncomingServer(models.Model):
    class Kind(models.TextChoices):
        IMAP = "imap", _("IMAP (recommended)")
        POP3 = "pop3", _("POP3")

    class Security(models.TextChoices):
        SSL = "ssl", _("SSL/TLS")
        STARTTLS = "starttls", _("STARTTLS")
        NONE = "none", _("None (plain text)")

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("Password")
        OUTLOOK = "outlook", _("Outlook OAuth")
        GMAIL = "gmail", _("Gmail OAuth")

    class AfterStore(models.TextChoices):
        KEEP = "keep", _("Keep on the server (track by UID)")
        MARK_SEEN = "seen", _("Mark as seen")
        MOVE = "move", _("Move to a folder")
        DELETE = "delete", _("Delete from the server")

    class DefaultAction(models.TextChoices):
        """What routing creates for mail that matches no route (model labels)."""

        TICKET = "knowlix.ticket", _("Create a Ticket")
        OPPORTUNITY = "knowlix.opportunity", _("Create an Opportunity")
        EXPENSE = "knowlix.expense", _("Create an Expense")
        JOB_APPLICATION = "knowlix.jobapplication", _("Create a Job Application")

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Confirmed")
        NEEDS_ATTENTION = "needs_attention", _("Needs attention")

    DEFAULT_PORTS: ClassVar[dict[tuple[str, str], int]] = {
        (Kind.IMAP, Security.SSL): 993,
        (Kind.IMAP, Security.STARTTLS): 143,
        (Kind.IMAP, Security.NONE): 143,
        (Kind.POP3, Security.SSL): 995,
        (Kind.POP3, Security.STARTTLS): 110,
        (Kind.POP3, Security.NONE): 110,
    }

    name = models.CharField(max_length=100)
    kind = models.CharField(
        _("type"), max_length=10, choices=Kind.choices, default=Kind.IMAP
    )
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Empty: 993 (IMAP) / 995 (POP3) with SSL/TLS, else 143 / 110."),
    )
    security = models.CharField(
        max_length=10, choices=Security.choices, default=Security.SSL
    )
    username = models.CharField(max_length=320)
    password = EncryptedTextField(blank=True)
    auth_method = models.CharField(
        max_length=20, choices=AuthMethod.choices, default=AuthMethod.PASSWORD
    )
    oauth_grant = models.ForeignKey(
        "mailservers.OAuthGrant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incoming_servers",
    )
    folder = models.CharField(
        max_length=200, default="INBOX", help_text=_("IMAP only.")
    )
    after_store = models.CharField(
        _("after a message is stored"),
        max_length=10,
        choices=AfterStore.choices,
        default=AfterStore.KEEP,
    )
    move_to_folder = models.CharField(max_length=200, blank=True)
    default_action = models.CharField(
        _("mail matching no route"),
        max_length=40,
        choices=DefaultAction.choices,
        default=DefaultAction.TICKET,
    )
    # Follows (and may be assigned) the records the default action creates.
    default_team = models.ForeignKey(
        "knowlix.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("team of those records"),
    )
    poll_interval_minutes = models.PositiveIntegerField(default=5)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)

    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_poll_at = models.DateTimeField(null=True, blank=True)

    # IMAP position: messages above ``last_uid`` in ``uidvalidity`` are new.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)

    # The poll lease (one poll per server at a time) and its progress.
    poll_token = models.CharField(max_length=40, blank=True)
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    # The process holding the lease (mailservers.services.lease_owner).
    poll_owner = models.CharField(max_length=300, blank=True)
    poll_started_at = models.DateTimeField(null=True, blank=True)
    poll_done = models.PositiveIntegerField(default=0)
    poll_total = models.PositiveIntegerField(default=0)
    # What the last finished poll did: stored / duplicate / quarantined / refused /
    # known (fetched before) / oversize counts (``PollResult.counts``).
    last_poll_counts = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["state", "last_poll_at"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("mailservers:incoming-detail", args=[self.pk])

    def can_be_opened_by(self, user: User | AnonymousUser) -> bool:
        """Any admin may open a server's page (a notice links there); the list of
        servers sits in the Technical menu, shown in developer mode."""
        return is_admin(user)

    @property
    def effective_port(self) -> int:
        return self.port or self.DEFAULT_PORTS[(self.kind, self.security)]

    @property
    def kind_label(self) -> str:
        return str(self.get_kind_display())

    @property
    def list_details(self) -> str:
        """What the server is for, in the Details column of the server list."""
        every = str(_("every %(n)s min")) % {"n": self.poll_interval_minutes}
        return f"{self.folder}, {every}" if self.is_imap else every

    @property
    def state_badge(self) -> tuple[str, str]:
        """``(label, tone)`` of the state badge on the server pages."""
        tones: dict[str, str] = {"confirmed": "ok", "needs_attention": "err"}
        return str(self.get_state_display()), tones.get(self.state, "muted")

    @property
    def is_imap(self) -> bool:
        return self.kind == self.Kind.IMAP

    @property
    def is_polling(self) -> bool:
        return bool(
            self.poll_token
            and self.poll_lease_until
            and self.poll_lease_until > timezone.now()
        )

    @property
    def has_failed_since_success(self) -> bool:
        if not self.last_error_at:
            return False
        return not self.last_success_at or self.last_error_at > self.last_success_at

    @property
    def is_due(self) -> bool:
        if self.last_poll_at is None:
            return True
        interval = dt.timedelta(minutes=self.poll_interval_minutes)
        return timezone.now() + POLL_DUE_SLACK >= self.last_poll_at + interval


class FetchedMessage(models.Model):
    """One message fetched from one server: the exactly-once ledger."""

    class State(models.TextChoices):
        STORED = "stored", _("Stored")
        KNOWN = "known", _("Already stored (found again after a UIDVALIDITY change)")
        OVERSIZE = "oversize", _("Too large: left on the server")

    server = models.ForeignKey(
        IncomingServer, on_delete=models.CASCADE, related_name="fetched_messages"
    )
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    uidl = models.CharField(max_length=100, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.STORED)
    # The after-store action (flag/move/delete) has yet to reach the server.
    action_pending = models.BooleanField(default=False)
    # Oversize mail: its From/Subject/Date for the admins (the body stays remote).
    summary = models.CharField(max_length=500, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "uidvalidity", "uid"],
                condition=Q(uid__isnull=False),
                name="fetched_once_per_uid",
            ),
            models.UniqueConstraint(
                fields=["server", "uidl"],
                condition=~Q(uidl=""),
                name="fetched_once_per_uidl",
            ),
        ]
        indexes = [
            models.Index(
                fields=["server", "action_pending"],
                condition=Q(action_pending=True),
                name="fetched_action_pending",
            ),
            models.Index(fields=["server", "sha256"], name="fetched_sha256"),
            models.Index(fields=["server", "message_id"], name="fetched_message_id"),
        ]

    def __str__(self) -> str:
        return f"{self.server} {self.uid or self.uidl}"
