"""The abstract base every business record inherits to gain an activity feed.

A record has an owner, timestamps, an unguessable ``reply_token`` (for its reply
address ``reply+<token>@<catch-all domain>``) and a short ``TAG`` used in subjects
(``[TCK-42]``). Subclasses say which fields name them and link a contact.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, ClassVar, Self

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse

from knowlix.models.contacts import Contact

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def new_reply_token() -> str:
    return secrets.token_urlsafe(18)


class Record(models.Model):
    """Abstract base: inherit it and the model gets a feed, followers and a reply address."""

    TAG: ClassVar[str] = "REC"
    # The field that holds the record's title and receives the subject of a mail
    # that creates it, and the field linking its contact (or "" when none).
    TITLE_FIELD: ClassVar[str] = "name"
    CONTACT_FIELD: ClassVar[str] = "contact"
    # Fields whose change posts a "stage changed" notification in the feed.
    TRACKED_FIELDS: ClassVar[tuple[str, ...]] = ()
    # URL prefix of the record kind, e.g. "helpdesk/tickets".
    URL_NAME: ClassVar[str] = ""
    # The user field that says who handles the record: a team's assignment sets
    # it, and whoever it is set to hears about it.
    ASSIGNEE_FIELD: ClassVar[str] = "owner"
    # A long text field that a mail creating the record fills with its body ("" =
    # none): shown apart from the other fields.
    DESCRIPTION_FIELD: ClassVar[str] = ""
    # Only admins (staff) may see and change records of this kind, whatever the
    # model permissions say (``knowlix.access``).
    ADMIN_ONLY: ClassVar[bool] = False

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    reply_token = models.CharField(
        max_length=32, unique=True, default=new_reply_token, editable=False
    )

    # Not a field: the team members who follow a record being created for a team
    # (``knowlix.teams.apply_team``); read once by the "created" notice.
    team_followers: tuple[User, ...] = ()

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        indexes = [
            # A reply address an MTA lower-cased (routing.matching) is looked up
            # by this index, not by scanning every record table: anyone can send
            # such an address.
            models.Index(Upper("reply_token"), name="%(class)s_token_ci"),
        ]

    def __str__(self) -> str:
        return str(getattr(self, self.TITLE_FIELD) or f"{self.TAG}-{self.pk}")

    def get_absolute_url(self) -> str:
        return reverse(f"knowlix:{self.URL_NAME}-detail", args=[self.pk])

    @property
    def display_name(self) -> str:
        return str(self)

    @property
    def record_tag(self) -> str:
        """The subject tag, e.g. ``[TCK-42]``."""
        return f"[{self.TAG}-{self.pk}]"

    @property
    def feed_contact(self) -> Contact | None:
        if not self.CONTACT_FIELD:
            return None
        return getattr(self, self.CONTACT_FIELD, None)

    @property
    def feed_users(self) -> list[User]:
        """Users who follow the record by default (owner, assignee, manager...)."""
        return [u for u in [self.owner] if u is not None]

    @classmethod
    def new_from_mail(
        cls, *, subject: str, contact: Contact | None, defaults: dict | None = None
    ) -> Self:
        """An unsaved record built from an incoming mail (alias or default action)."""
        values = dict(defaults or {})
        values.setdefault(cls.TITLE_FIELD, (subject or "(no subject)")[:200])
        if cls.CONTACT_FIELD and contact is not None:
            values.setdefault(cls.CONTACT_FIELD, contact)
        return cls(**values)
