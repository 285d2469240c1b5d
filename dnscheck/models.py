"""Sending domains, the history of their DNS checks, and Knowlix's DKIM signing keys.

A SendingDomain keeps the latest status of SPF, DKIM and DMARC (blank until the first
check) and ``is_dkim_verified``, which only a definite result changes: a check that
could not reach DNS never stops or starts signing. At most one DkimKey is active.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dnscheck.report import DomainReport
from knowlix.crypto import EncryptedTextField
from knowlix.users import is_admin


class Status(models.TextChoices):
    VALID = "valid", _("Valid")
    MISSING = "missing", _("Missing")
    WRONG = "wrong", _("Wrong")
    UNKNOWN = "unknown", _("Could not check")


STATUS_BADGES: dict[str, str] = {
    Status.VALID: "badge-ok",
    Status.MISSING: "badge-warn",
    Status.WRONG: "badge-err",
    Status.UNKNOWN: "badge-muted",
}


class StatusFields(models.Model):
    """The three statuses, shared by a domain (latest) and a history row."""

    spf_status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    dkim_status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    dmarc_status = models.CharField(max_length=10, choices=Status.choices, blank=True)

    class Meta:
        abstract = True

    def statuses(self) -> dict[str, str]:
        return {
            "spf": self.spf_status,
            "dkim": self.dkim_status,
            "dmarc": self.dmarc_status,
        }

    @property
    def is_valid(self) -> bool:
        return all(value == Status.VALID for value in self.statuses().values())


class SendingDomain(StatusFields):
    """A domain Knowlix may send mail from, once its DNS records check out."""

    name = models.CharField(_("domain"), max_length=253, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Signing follows definite DKIM results only (a DNS time-out changes nothing).
    is_dkim_verified = models.BooleanField(default=False)
    last_report = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dnscheck:domain-detail", args=[self.pk])

    def can_be_opened_by(self, user: User | AnonymousUser) -> bool:
        """Its page (Settings › Domains) is for admins; feed notices open it."""
        return is_admin(user)

    @property
    def report(self) -> DomainReport | None:
        return DomainReport.from_dict(self.last_report) if self.last_report else None


class DomainCheck(StatusFields):
    """One check of a domain: the history shown on its page."""

    class Trigger(models.TextChoices):
        CREATED = "created", _("Domain added")
        MANUAL = "manual", _("Check now")
        SCHEDULED = "scheduled", _("Daily re-check")
        COMMAND = "command", _("check_dns command")

    domain = models.ForeignKey(
        SendingDomain, on_delete=models.CASCADE, related_name="checks"
    )
    checked_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    report = models.JSONField(default=dict)
    # The domain had a valid mechanism before this check and lost it.
    broke = models.BooleanField(default=False)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["domain", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.domain} at {self.checked_at:%Y-%m-%d %H:%M}"


class DkimKey(models.Model):
    """An RSA key Knowlix signs with; the public half goes in Knowlix's own DNS."""

    selector = models.CharField(max_length=63)
    private_key = EncryptedTextField()  # PEM, PKCS#1
    public_key = models.TextField()  # base64 of the DER SubjectPublicKeyInfo
    bits = models.PositiveIntegerField(default=2048)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="dnscheck_one_active_dkim_key",
            )
        ]

    def __str__(self) -> str:
        state = "active" if self.is_active else "retired"
        return f"DKIM key {self.selector} ({self.bits} bits, {state})"

    @property
    def dns_record(self) -> str:
        """The TXT value published at ``<selector>._domainkey.<target domain>``."""
        return f"v=DKIM1; k=rsa; p={self.public_key}"
