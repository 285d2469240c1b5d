"""The activity feed: messages on any record, followers, the inbox, activities, files.

Everything hangs off a record through a generic relation (content type + object id,
indexed together). ``Message.message_id`` is the RFC 5322 Message-ID, unique: it is how
replies find their thread, so it is never reused.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailservers.models import OutgoingRecipient


class Subtype(models.Model):
    """What a message is about; followers subscribe to subtypes."""

    DISCUSSION = "discussion"
    NOTE = "note"
    ACTIVITY = "activity"
    STAGE = "stage"
    CREATED = "created"
    MAILING = "mailing"  # a mailing's email; its audience is subscribed to it alone

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    # Internal subtypes are never sent to contacts (external followers).
    internal = models.BooleanField(default=False)
    # New followers subscribe to default subtypes.
    default = models.BooleanField(default=True)
    sequence = models.PositiveSmallIntegerField(default=10)

    class Meta:
        ordering = ["sequence", "name"]

    def __str__(self) -> str:
        return self.name


class RecordLinkMixin(models.Model):
    """A generic link to a business record."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    # Not a field: the linked record (None once deleted), set on rows read by
    # ``feed.selectors.attach_records``.
    linked_record: models.Model | None

    class Meta:
        abstract = True


class Message(RecordLinkMixin):
    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        NOTE = "note", _("Note")
        NOTIFICATION = "notification", _("Notification")

    class Direction(models.TextChoices):
        OUTGOING = "out", _("Sent from Knowlix")
        INCOMING = "in", _("Received")
        INTERNAL = "internal", _("Internal")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.INTERNAL
    )
    subtype = models.ForeignKey(
        Subtype, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    author_contact = models.ForeignKey(
        "knowlix.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The address the message came from, as written in its From header.
    email_from = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField(blank=True)  # always sanitized before it is stored
    body_text = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    is_internal = models.BooleanField(default=False)
    # Sender authenticity of incoming mail (SPF/DKIM/DMARC verdict).
    is_unverified_sender = models.BooleanField(default=False)
    auth_verdict = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # A post to many followers notifies and mails them from a task, chunk by chunk
    # (feed.fanout): how many subscribed followers, how many done, the last
    # follower done (the chunk's writes and this move commit together) and the
    # last follower there was when posting (later ones were handled by the post).
    fanout_total = models.PositiveIntegerField(default=0)
    fanout_done = models.PositiveIntegerField(default=0)
    fanout_cursor = models.PositiveBigIntegerField(default=0)
    fanout_until = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The feed's page query: newest first, ties broken by id.
            models.Index(
                fields=["content_type", "object_id", "-created_at", "-id"],
                name="feed_message_record_page",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_fanning_out(self) -> bool:
        return self.fanout_done < self.fanout_total

    @property
    def author_name(self) -> str:
        if self.author_user_id and (user := self.author_user) is not None:
            return user.get_full_name() or user.get_username()
        if self.author_contact_id:
            return str(self.author_contact)
        return self.email_from or "Knowlix"


class MessageRecipient(models.Model):
    """An address a message went to (To/Cc), linked to a contact/user if known."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="recipients"
    )
    address = models.CharField(max_length=320)
    name = models.CharField(max_length=200, blank=True)
    contact = models.ForeignKey(
        "knowlix.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    user = models.ForeignKey(  # indexed where set (Meta.indexes)
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    # Why no mail could be queued to this address (bad address, mail too large).
    delivery_error = models.CharField(max_length=500, blank=True)

    class Meta:
        # Most rows are a contact's (a mailing writes one per contact): the user
        # index holds only the rows that have one.
        indexes = [
            models.Index(
                fields=["user"],
                condition=Q(user__isnull=False),
                name="messagerecipient_user",
            )
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def delivery_state(self) -> str:
        """The Email queue's state of its mail, or "" when no mail went to it."""
        return delivery_state(self)[0]

    @property
    def delivery_reason(self) -> str:
        return delivery_state(self)[1]


def delivery_state(recipient: MessageRecipient) -> tuple[str, str]:
    """(state, reason) as the Email queue says it: queued / sending / deferred /
    sent / failed / bounced / cancelled; ("", "") if never mailed."""
    rows = getattr(recipient, "delivery_rows", None)
    if rows is None:
        rows = list(recipient.deliveries.order_by("-id")) if recipient.pk else []
    if rows:
        row = rows[0]
        return row.state, row.last_error
    if recipient.delivery_error:
        return OutgoingRecipient.State.FAILED, recipient.delivery_error
    return "", ""


def blob_path(blob: Blob, filename: str) -> str:
    return f"blobs/{blob.sha256[:2]}/{blob.sha256[2:4]}/{blob.sha256}"


class Blob(models.Model):
    """File content, stored once per sha256 through Django's storage API."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    file = models.FileField(upload_to=blob_path, max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256


class Attachment(models.Model):
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="attachments")
    filename = models.CharField(max_length=255)
    mimetype = models.CharField(max_length=127, default="application/octet-stream")
    # For inline images referenced as cid:<content_id> from the HTML body.
    content_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def is_image(self) -> bool:
        return self.mimetype.startswith("image/")

    @property
    def is_pdf(self) -> bool:
        return self.mimetype == "application/pdf"


# (user_id, contact_id, subtype_id) of one follower's subscription; subtype_id is
# None for a follower subscribed to nothing.
FollowerRow = tuple[int | None, int | None, int | None]


class Follower(RecordLinkMixin):
    """A user or a contact following a record, subscribed to some subtypes."""

    # No index of its own: it leads follower_record_id (a mailing writes a
    # follower per contact of its audience, each index once more per row).
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(  # indexed where set (Meta.indexes)
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    contact = models.ForeignKey(
        "knowlix.Contact",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    subtypes = models.ManyToManyField(Subtype, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The generic relation's index, with the id last: a fan-out reads a
        # record's followers in id order, a chunk after its cursor at a time (an
        # index range scan, whatever the planner's statistics say).
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "id"], name="follower_record_id"
            ),
            # Most followers of a mailing are contacts: only the users' rows.
            models.Index(
                fields=["user"], condition=Q(user__isnull=False), name="follower_user"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "user"],
                condition=Q(user__isnull=False),
                name="follower_unique_user",
            ),
            models.UniqueConstraint(
                fields=["content_type", "object_id", "contact"],
                condition=Q(contact__isnull=False),
                name="follower_unique_contact",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False, contact__isnull=True)
                | Q(user__isnull=True, contact__isnull=False),
                name="follower_user_xor_contact",
            ),
        ]

    def __str__(self) -> str:
        return str(self.user or self.contact)


class Notification(models.Model):
    """A message in a user's inbox."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="notifications"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="knowlix_notifications",
    )
    is_read = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    # The notification was also sent by email (the user prefers email).
    is_emailed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "is_read", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"], name="notification_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ← {self.message}"


class ActivityType(models.Model):
    class Category(models.TextChoices):
        EMAIL = "email", _("Email")
        CALL = "call", _("Call")
        MEETING = "meeting", _("Meeting")
        TODO = "todo", _("To-Do")
        UPLOAD = "upload", _("Upload document")

    name = models.CharField(max_length=80)
    category = models.CharField(
        max_length=20, choices=Category.choices, default=Category.TODO
    )
    default_delay_days = models.PositiveSmallIntegerField(default=0)
    icon = models.CharField(max_length=8, blank=True)
    sequence = models.PositiveSmallIntegerField(default=10)

    class Meta:
        ordering = ["sequence", "name"]

    def __str__(self) -> str:
        return self.name


class Activity(RecordLinkMixin):
    """A follow-up task on a record; marking it done posts in the feed, deletes it."""

    class State(models.TextChoices):
        OVERDUE = "overdue", _("Overdue")
        TODAY = "today", _("Today")
        PLANNED = "planned", _("Planned")

    activity_type = models.ForeignKey(
        ActivityType, on_delete=models.PROTECT, related_name="+"
    )
    summary = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)  # sanitized HTML
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="knowlix_activities",
    )
    due_date = models.DateField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_date", "id"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["assignee", "due_date"]),
        ]

    def __str__(self) -> str:
        return self.summary or str(self.activity_type)

    def state_on(self, today: dt.date) -> State:
        if self.due_date < today:
            return self.State.OVERDUE
        if self.due_date == today:
            return self.State.TODAY
        return self.State.PLANNED

    @property
    def state(self) -> State:
        return self.state_on(timezone.localdate())

    @property
    def state_label(self) -> str:
        return str(self.State(self.state).label)


class ActivityDigest(models.Model):
    """One row per user and day a digest was queued: the daily task runs once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    activity_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="activity_digest_once")
        ]

    def __str__(self) -> str:
        return f"digest of {self.user} for {self.day}"


class ScheduledMessage(RecordLinkMixin):
    """An email written now to be sent later (*Send later* in the composer).

    It is posted on the record's feed, like any message, only when it leaves
    (``feed.scheduled.send_due_messages``, run by beat); until then its author or
    anyone who may edit the record can change or cancel it. The row moves from
    *scheduled* to *sent* in the transaction that posts it, so it leaves once.
    """

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    subject = models.CharField(max_length=200, blank=True)
    body_text = models.TextField()
    recipients = models.JSONField(default=list, blank=True)  # typed To, as typed
    cc = models.JSONField(default=list, blank=True)
    send_at = models.DateTimeField()
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.SCHEDULED
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["send_at", "id"]
        indexes = [
            models.Index(fields=["content_type", "object_id"]),
            models.Index(fields=["state", "send_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.body_text[:40]} ({self.state})"


class ImageSender(models.Model):
    """A sender whose remote images a user chose to always load (*Show images*,
    always for this sender). Without a row, remote images wait for a click."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    address = models.CharField(max_length=320)  # lower case
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "address"], name="feed_imagesender_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} shows images of {self.address}"
