"""The seven business record kinds. Each inherits :class:`Record` and so has a feed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from knowlix.models.base import Record
from knowlix.models.contacts import Contact


def contact_link() -> models.ForeignKey:
    """An optional link to a contact (set to null when the contact is deleted)."""
    return models.ForeignKey(
        "knowlix.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


def user_link() -> models.ForeignKey:
    """An optional link to a user (set to null when the user is deleted)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


_money: dict[str, Any] = {
    "max_digits": 12,
    "decimal_places": 2,
    "validators": [MinValueValidator(Decimal(0))],
}


class Opportunity(Record):
    TAG = "OPP"
    TITLE_FIELD = "title"
    TRACKED_FIELDS = ("stage",)
    URL_NAME = "opportunity"
    DESCRIPTION_FIELD = "description"

    class Stage(models.TextChoices):
        NEW = "new", _("New")
        QUALIFIED = "qualified", _("Qualified")
        PROPOSITION = "proposition", _("Proposition")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    contact = contact_link()
    expected_revenue = models.DecimalField(default=Decimal(0), **_money)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)

    class Meta(Record.Meta):
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")


class SalesOrder(Record):
    TAG = "SO"
    TITLE_FIELD = "number"
    CONTACT_FIELD = "customer"
    TRACKED_FIELDS = ("state",)
    URL_NAME = "salesorder"

    class State(models.TextChoices):
        QUOTATION = "quotation", _("Quotation")
        SENT = "sent", _("Quotation sent")
        CONFIRMED = "confirmed", _("Sales order")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(max_length=40, unique=True)
    customer = contact_link()
    total = models.DecimalField(default=Decimal(0), **_money)
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.QUOTATION
    )

    class Meta(Record.Meta):
        verbose_name = _("sales order")


class Invoice(Record):
    TAG = "INV"
    TITLE_FIELD = "number"
    CONTACT_FIELD = "customer"
    TRACKED_FIELDS = ("state",)
    URL_NAME = "invoice"

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        POSTED = "posted", _("Posted")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(max_length=40, unique=True)
    customer = contact_link()
    amount = models.DecimalField(default=Decimal(0), **_money)
    due_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)

    class Meta(Record.Meta):
        verbose_name = _("invoice")


class Project(Record):
    TAG = "PRJ"
    TITLE_FIELD = "name"
    CONTACT_FIELD = ""
    TRACKED_FIELDS = ("manager",)
    URL_NAME = "project"
    ASSIGNEE_FIELD = "manager"

    name = models.CharField(max_length=200)
    manager = user_link()
    deadline = models.DateField(null=True, blank=True)

    class Meta(Record.Meta):
        verbose_name = _("project")

    @property
    def feed_users(self) -> list:
        return [u for u in {self.owner, self.manager} if u is not None]


class Ticket(Record):
    TAG = "TCK"
    TITLE_FIELD = "subject"
    TRACKED_FIELDS = ("stage", "assignee")
    URL_NAME = "ticket"
    ASSIGNEE_FIELD = "assignee"
    DESCRIPTION_FIELD = "description"

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    class Stage(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("In progress")
        WAITING = "waiting", _("Waiting on customer")
        SOLVED = "solved", _("Solved")
        CANCELLED = "cancelled", _("Cancelled")

    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    contact = contact_link()
    priority = models.CharField(
        max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)
    assignee = user_link()

    class Meta(Record.Meta):
        verbose_name = _("helpdesk ticket")

    @property
    def feed_users(self) -> list:
        return [u for u in {self.owner, self.assignee} if u is not None]


class Expense(Record):
    TAG = "EXP"
    TITLE_FIELD = "description"
    CONTACT_FIELD = ""
    TRACKED_FIELDS = ("state",)
    URL_NAME = "expense"

    class State(models.TextChoices):
        DRAFT = "draft", _("To submit")
        SUBMITTED = "submitted", _("Submitted")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")
        PAID = "paid", _("Paid")

    description = models.CharField(max_length=200)
    employee = user_link()
    amount = models.DecimalField(default=Decimal(0), **_money)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)

    class Meta(Record.Meta):
        verbose_name = _("expense")

    @property
    def feed_users(self) -> list:
        return [u for u in {self.owner, self.employee} if u is not None]


class JobApplication(Record):
    TAG = "JOB"
    TITLE_FIELD = "applicant_name"
    TRACKED_FIELDS = ("stage",)
    URL_NAME = "jobapplication"

    class Stage(models.TextChoices):
        NEW = "new", _("New")
        SCREENING = "screening", _("Initial qualification")
        INTERVIEW = "interview", _("Interview")
        OFFER = "offer", _("Contract proposal")
        HIRED = "hired", _("Hired")
        REFUSED = "refused", _("Refused")

    applicant_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    job_position = models.CharField(max_length=200, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW)
    contact = contact_link()

    class Meta(Record.Meta):
        verbose_name = _("job application")

    @classmethod
    def new_from_mail(
        cls, *, subject: str, contact: Contact | None, defaults: dict | None = None
    ) -> Self:
        record = super().new_from_mail(
            subject=subject, contact=contact, defaults=defaults
        )
        if contact is not None:
            record.applicant_name = contact.name or contact.email
            record.email = contact.email
            record.job_position = record.job_position or (subject or "")[:200]
        return record


class Mailing(Record):
    """A mass mailing (newsletter): one email to every contact of its audience,
    posted on its own feed and fanned out by ``feed.services.mailings``. Sent once:
    draft → sending (the Send click, claimed by one UPDATE) → sent (all queued)."""

    TAG = "MLG"
    TITLE_FIELD = "subject"
    CONTACT_FIELD = ""
    URL_NAME = "mailing"
    # Marketing mail to every contact: only admins see, write and send mailings.
    ADMIN_ONLY = True

    class Audience(models.TextChoices):
        ALL = "all", _("All contacts with an email address")
        COMPANY = "company", _("The contacts of one company")

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")

    subject = models.CharField(max_length=200)
    body = models.TextField(help_text=_("Plain text; blank lines separate paragraphs."))
    audience = models.CharField(
        max_length=20, choices=Audience.choices, default=Audience.ALL
    )
    company = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("For “The contacts of one company”: the contacts' Company."),
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    # Set by the Send click (who, when) and by the post (its message, how many).
    sent_by = user_link()
    sent_at = models.DateTimeField(null=True, blank=True)
    message = models.ForeignKey(
        "feed.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    audience_size = models.PositiveIntegerField(default=0)

    class Meta(Record.Meta):
        verbose_name = _("mailing")

    def clean(self) -> None:
        if self.audience == self.Audience.COMPANY and not self.company.strip():
            raise ValidationError({"company": _("Name the company.")})
