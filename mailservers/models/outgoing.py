"""Outgoing side: SMTP servers, the durable mail queue and the local mail catcher.

An ``OutgoingMail`` holds the bytes built once at queue time and one
``OutgoingRecipient`` per envelope recipient. Rows change state only through
``mailservers.services.outgoing`` (claims are UPDATEs or ``SKIP LOCKED`` selects, so
each mail is sent by one worker only). ``save()`` has no side effects.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from knowlix.crypto import EncryptedTextField
from knowlix.users import is_admin

__all__ = [
    "PRESETS",
    "PRESET_FIELDS",
    "CaughtMail",
    "OutboxClaim",
    "OutgoingMail",
    "OutgoingRecipient",
    "OutgoingServer",
    "OutgoingServerHealth",
]

# Host, port, security, authentication and default sending limits for the well-known
# providers, plus a hint for the form. The limits are the providers' published ones
# (the admin may change them on the server): Gmail about 2,000 mails a day per
# Workspace user, Outlook 365 30 a minute and 10,000 recipients a day, Mailjet's free
# plan 200 a day.
PRESETS: dict[str, dict[str, str | int | Promise]] = {
    "gmail": {
        "label": "Gmail / Google Workspace",
        "host": "smtp.gmail.com",
        "port": 587,
        "security": "starttls",
        "auth_method": "gmail",
        "limit_per_minute": 20,
        "limit_per_day": 2000,
        "hint": _(
            "Save, then connect the Gmail account (Gmail sign-in). Or choose user "
            "name and password with an app password (Google Account > Security > "
            "App passwords)."
        ),
    },
    "outlook": {
        "label": "Outlook 365",
        "host": "smtp.office365.com",
        "port": 587,
        "security": "starttls",
        "auth_method": "outlook",
        "limit_per_minute": 30,
        "limit_per_day": 10000,
        "hint": _(
            "Microsoft 365 needs the Outlook sign-in (OAuth): save, then connect the "
            "account."
        ),
    },
    "mailjet": {
        "label": "Mailjet",
        "host": "in-v3.mailjet.com",
        "port": 587,
        "security": "starttls",
        "auth_method": "password",
        "limit_per_day": 200,
        "hint": _(
            "User name: your API key; password: your secret key. Verify your sending "
            "domain in Mailjet (Account > Sender domains) or mail will be refused. "
            "The daily limit is the free plan's: raise it for a paid plan."
        ),
    },
}
PRESET_FIELDS = (
    "host",
    "port",
    "security",
    "auth_method",
    "limit_per_minute",
    "limit_per_hour",
    "limit_per_day",
)


class OutgoingServer(models.Model):
    class Security(models.TextChoices):
        NONE = "none", _("None")
        SSL = "ssl", _("SSL/TLS")
        STARTTLS = "starttls", _("STARTTLS")

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("User name and password")
        OUTLOOK = "outlook", _("Outlook sign-in (OAuth)")
        GMAIL = "gmail", _("Gmail sign-in (OAuth)")

    name = models.CharField(max_length=100)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=587)
    security = models.CharField(
        max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    auth_method = models.CharField(
        max_length=10, choices=AuthMethod.choices, default=AuthMethod.PASSWORD
    )
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    oauth_grant = models.ForeignKey(
        "mailservers.OAuthGrant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outgoing_servers",
    )
    from_filter = models.CharField(
        max_length=1000,
        blank=True,
        help_text=_(
            "Addresses or domains this server sends for, separated by commas "
            "(e.g. sales@example.com, example.org). Empty: any sender."
        ),
    )
    priority = models.PositiveSmallIntegerField(
        default=10, help_text=_("Among equal matches, the lowest number is used.")
    )
    is_active = models.BooleanField(default=True)
    limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    limit_per_hour = models.PositiveIntegerField(null=True, blank=True)
    limit_per_day = models.PositiveIntegerField(null=True, blank=True)
    preset = models.CharField(max_length=20, blank=True)
    # Set on a sending quota or an auth/config problem: its mail waits until then.
    paused_until = models.DateTimeField(null=True, blank=True)
    needs_attention = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("mailservers:outgoing-detail", args=[self.pk])

    @property
    def effective_port(self) -> int:
        """The port connected to (named as on IncomingServer, for shared pages)."""
        return self.port

    @property
    def kind_label(self) -> str:
        return "SMTP"

    @property
    def list_details(self) -> str:
        """What the server is for, in the Details column of the server list."""
        senders = self.from_filter or str(_("any sender"))
        return str(_("From Filter: %(senders)s; priority %(priority)s")) % {
            "senders": senders,
            "priority": self.priority,
        }

    @property
    def state_badge(self) -> tuple[str, str]:
        """``(label, tone)`` of the state badge on the server pages."""
        if not self.is_active:
            return str(_("Inactive")), "muted"
        if self.needs_attention:
            return str(_("Needs attention")), "err"
        if self.is_paused:
            assert self.paused_until is not None  # is_paused checked it
            until = timezone.localtime(self.paused_until).strftime("%H:%M")
            return str(_("Paused until %(time)s") % {"time": until}), "warn"
        return str(_("Active")), "ok"

    @property
    def filter_entries(self) -> list[str]:
        """The From Filter as lower-case addresses and domains."""
        return [e.strip().lower() for e in self.from_filter.split(",") if e.strip()]

    def matches_address(self, address: str) -> bool:
        return address.lower() in self.filter_entries

    def matches_domain(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return bool(domain) and domain in self.filter_entries

    @property
    def limits(self) -> list[tuple[int, int]]:
        """``(seconds, max mails)`` for each limit that is set."""
        pairs = [
            (60, self.limit_per_minute),
            (3600, self.limit_per_hour),
            (86400, self.limit_per_day),
        ]
        return [(seconds, limit) for seconds, limit in pairs if limit]

    @property
    def limits_text(self) -> str:
        """The sending limits in words ("30 per minute, 10000 per day"), or ""."""
        names = {60: _("per minute"), 3600: _("per hour"), 86400: _("per day")}
        return ", ".join(f"{limit} {names[seconds]}" for seconds, limit in self.limits)

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_until and self.paused_until > timezone.now())

    @property
    def has_failed_since_success(self) -> bool:
        """The last thing that happened to this server was an error."""
        if not self.last_error or not self.last_error_at:
            return False
        return not self.last_success_at or self.last_error_at > self.last_success_at


class OutgoingServerHealth(models.Model):
    """Whether a server (or the default one, ``server`` None) answers connections.

    Postfix's dead-destination cache, kept in the database so every worker agrees:
    while ``down_since`` is set, the server's mail waits without using attempts and
    only a probe (the next drain after ``probe_at``) tries to connect again. The row
    stays after an outage so the *back* notice has something to point at.
    """

    # "default" for KNOWLIX_SMTP_URL, else the server's id.
    key = models.CharField(max_length=20, unique=True)
    server = models.OneToOneField(
        OutgoingServer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="health",
    )
    label = models.CharField(max_length=200)
    down_since = models.DateTimeField(null=True, blank=True)
    probe_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)  # connection failures in a row
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    back_at = models.DateTimeField(null=True, blank=True)
    # The admins were told it is down; they are told again when it is back.
    down_notified = models.BooleanField(default=False)
    back_notice_due = models.BooleanField(default=False)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        if self.server_id is not None:
            return reverse("mailservers:outgoing-edit", args=[self.server_id])
        return reverse("mailservers:outgoing-list")

    def can_be_opened_by(self, user: User | AnonymousUser) -> bool:
        return is_admin(user)

    @property
    def is_down(self) -> bool:
        return self.down_since is not None


class OutboxClaim(models.Model):
    """A worker's hold on the mail it claimed (``OutgoingMail.claim_token``).

    Renewed by the worker's heartbeat (``mailservers.services.heartbeat``) while it
    sends; ``owner`` names the process (``lease_owner``). When the lease has ended or
    the owner is gone, ``recover_stuck_mail`` settles the claim's mail.
    """

    token = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=300, blank=True)
    lease_until = models.DateTimeField()
    # The SMTP stage reached: the claim position of the mail whose content may
    # be on its way (written before its final dot can be; see SendProgress).
    data_position = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.token} ({self.owner or 'unknown owner'})"


class OutgoingMail(models.Model):
    class Stage(models.TextChoices):
        """How far the current attempt went (only what recovery needs to know)."""

        NONE = "", _("Not started")
        # The content may have reached the server, its reply never came (the
        # worker or the connection died): recorded on the mail that failed so.
        DATA = "data", _("Content sent, no reply")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DEFERRED = "deferred", _("Deferred")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    # States a drain pass may pick up (when next_attempt_at is due).
    PENDING = (State.QUEUED, State.DEFERRED)

    feed_message = models.ForeignKey(
        "feed.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outgoing_mails",
    )
    # No single-column indexes where a composite one (Meta.indexes) starts with the
    # column: every index is one more write per claim, send and insert; the claim
    # and the send rewrite 500 rows at once (bench/outgoing.py), a mailing writes
    # them by the hundred thousand (bench/mailing.py).
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # (content_type, object_id)
    )
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    record = GenericForeignKey("content_type", "object_id")
    # None: the deployment's default server (KNOWLIX_SMTP_URL).
    server = models.ForeignKey(
        OutgoingServer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mails",
        db_index=False,  # (server, sent_at)
    )
    server_label = models.CharField(max_length=200, blank=True)
    selection_reason = models.CharField(max_length=200, blank=True)
    from_address = models.CharField(max_length=320)  # header From and MAIL FROM
    from_name = models.CharField(max_length=200, blank=True)
    original_from = models.CharField(max_length=320, blank=True)  # set when rewritten
    reply_to = models.CharField(max_length=1000, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    message_id = models.CharField(max_length=998, unique=True)
    raw = models.BinaryField(editable=False)
    # Headers in UTF-8 (a recipient's local part is not ASCII): the server must
    # offer SMTPUTF8, else its recipients fail (mailservers.addresses).
    needs_smtputf8 = models.BooleanField(default=False)
    size = models.PositiveIntegerField(default=0)
    state = models.CharField(  # indexed by (state, next_attempt_at)
        max_length=10, choices=State.choices, default=State.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Written by the claim: the batch holding the mail and its place in the sending
    # order, so a crashed batch's sweeper knows which mails may have left.
    claim_token = models.CharField(max_length=32, blank=True)
    claim_position = models.PositiveIntegerField(null=True, blank=True)
    smtp_stage = models.CharField(
        max_length=10, choices=Stage.choices, default=Stage.NONE, blank=True
    )
    # Failed because nobody can tell whether it left (a worker or connection died
    # after the content was sent): a Retry may deliver it twice, and says so.
    uncertain = models.BooleanField(default=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["server", "sent_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.message_id} ({self.state})"

    @property
    def is_rewritten(self) -> bool:
        return bool(self.original_from)


class OutgoingRecipient(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEFERRED = "deferred", _("Deferred")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")
        CANCELLED = "cancelled", _("Cancelled")

    class Kind(models.TextChoices):
        TO = "to", "To"
        CC = "cc", "Cc"
        BCC = "bcc", "Bcc"

    PENDING = (State.QUEUED, State.DEFERRED)

    mail = models.ForeignKey(  # indexed by (mail, state)
        OutgoingMail,
        on_delete=models.CASCADE,
        related_name="recipients",
        db_index=False,
    )
    message_recipient = models.ForeignKey(
        "feed.MessageRecipient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    address = models.CharField(max_length=320)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=3, choices=Kind.choices, default=Kind.TO)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # VERP: this recipient's envelope sender is bounce+<token>@<catch-all>, so a
    # bounce names the exact mail and recipient even without the original headers.
    # Empty on rows queued before VERP (their bounces go to the plain alias).
    verp_token = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        ordering = ["mail_id", "id"]
        indexes = [models.Index(fields=["mail", "state"])]
        constraints = [
            models.UniqueConstraint(
                fields=["verp_token"],
                condition=~models.Q(verp_token=""),
                name="outgoingrecipient_verp_token_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.state})"


class CaughtMail(models.Model):
    """A message the local mail catcher received (the *Local mailbox* page)."""

    mail_from = models.CharField(max_length=320, blank=True)
    rcpt_tos = models.JSONField(default=list)
    subject = models.CharField(max_length=998, blank=True)
    from_header = models.CharField(max_length=998, blank=True)
    to_header = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    raw = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Mail to the catch-all domain goes through routing (mailservers.services.
    # localmailbox): "" = only caught; else an InboundMail outcome, or "error" when
    # routing raised (the message is still here, with the reason).
    routing_outcome = models.CharField(max_length=20, blank=True)
    routing_error = models.TextField(blank=True)
    routing_routes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"#{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("mailservers:localmailbox-detail", args=[self.pk])
