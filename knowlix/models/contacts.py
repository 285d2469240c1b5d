"""Contacts: the people and companies records are about."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.urls import reverse


def normalize_email(address: str) -> str:
    """Lower-cased and stripped: the form addresses are matched in."""
    return (address or "").strip().lower()


class Contact(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    email_normalized = models.CharField(
        max_length=254, blank=True, db_index=True, editable=False
    )
    phone = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    # Hard bounces since the last normal mail from this address (routing resets it).
    bounce_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email_normalized = normalize_email(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_normalized"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("knowlix:contact-detail", args=[self.pk])

    @property
    def formatted_address(self) -> str:
        from email.headerregistry import Address

        if not self.email:
            return ""
        return str(Address(display_name=self.name, addr_spec=self.email))


class MailingOptOut(models.Model):
    """An address that asked to receive no more mailings (normalized). Every later
    mailing's audience leaves it out; transactional mail (replies on records) still
    reaches it."""

    address = models.CharField(max_length=254, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The mailing whose unsubscribe link was used (None: added another way).
    mailing = models.ForeignKey(
        "knowlix.Mailing",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    def __str__(self) -> str:
        return self.address
