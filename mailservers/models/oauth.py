"""OAuth grants: the tokens that let Knowlix use an Outlook 365 or Gmail mailbox.

A grant is written only by ``mailservers.services.oauth`` and always under a row lock
(``select_for_update``), because a provider that rotates refresh tokens invalidates
the old one: two unsynchronised refreshes would lose the grant. Servers point to a
grant through their nullable ``oauth_grant`` foreign key.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from knowlix.crypto import EncryptedTextField
from knowlix.users import is_admin

__all__ = ["OAuthAuthorization", "OAuthGrant"]


class OAuthGrant(models.Model):
    class Provider(models.TextChoices):
        OUTLOOK = "outlook", _("Outlook 365")
        GMAIL = "gmail", _("Gmail")

    class State(models.TextChoices):
        VALID = "valid", _("Valid")
        NEEDS_RECONNECT = "needs_reconnect", _("Needs reconnect")

    provider = models.CharField(max_length=20, choices=Provider.choices)
    # The signed-in mailbox; the From Filter of its servers is forced to it.
    account_address = models.EmailField(max_length=320, blank=True)
    refresh_token = EncryptedTextField(blank=True)
    access_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.VALID)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # Who connected the account: notified (with the admins) when it needs
    # reconnecting, and may open the grant's page and reconnect it as the same mailbox.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="oauth_grants",
    )
    # Set in the transaction that flips a valid grant to *needs reconnect*; cleared
    # by the layer above once it told the owner and the admins (oauth_notices).
    reconnect_notice_due = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "account_address", "id"]

    def __str__(self) -> str:
        account = self.account_address or f"#{self.pk}"
        return f"{self.get_provider_display()} {account}"

    def get_absolute_url(self) -> str:
        return reverse("mailservers:oauth-grant", args=[self.pk])

    def can_be_opened_by(self, user: User | AnonymousUser) -> bool:
        """Its page, where a needs-reconnect notice leads: admins and its owner."""
        return is_admin(user) or self.is_owned_by(user)

    def is_owned_by(self, user: User | AnonymousUser) -> bool:
        """``user`` connected this account (and is still active)."""
        return bool(
            user.is_authenticated
            and user.is_active
            and self.owner_id is not None
            and self.owner_id == user.pk
        )

    @property
    def is_valid(self) -> bool:
        return self.state == self.State.VALID and bool(self.refresh_token)

    @property
    def has_failed_since_success(self) -> bool:
        """The last thing that happened to this grant was an error."""
        if not self.last_error_at:
            return False
        return not self.last_success_at or self.last_error_at > self.last_success_at

    def is_access_token_fresh(self, *, margin: dt.timedelta) -> bool:
        """True if the access token is still good ``margin`` from now."""
        return bool(
            self.access_token
            and self.access_token_expires_at
            and self.access_token_expires_at > timezone.now() + margin
        )


class OAuthAuthorization(models.Model):
    """One pending "Connect your account" attempt; consumed once by the confirm view.

    The ``state`` sent to the provider is a signed reference to ``nonce``; the row
    binds it to the user, their session and the server being connected.
    """

    class ServerKind(models.TextChoices):
        OUTGOING = "outgoing", _("Outgoing server")
        INCOMING = "incoming", _("Incoming server")

    nonce = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    session_hash = models.CharField(max_length=64)
    provider = models.CharField(max_length=20, choices=OAuthGrant.Provider.choices)
    server_kind = models.CharField(max_length=20, choices=ServerKind.choices)
    server_id = models.PositiveBigIntegerField()
    # msal's auth code flow / the PKCE verifier: needed once, by the code exchange.
    flow = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.provider} authorization for {self.server_kind} #{self.server_id}"
