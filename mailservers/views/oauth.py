"""OAuth pages: client registrations, *Connect your account*, the confirm endpoints.

The confirm endpoints live at the site root (``root_urlpatterns``) because their URLs
are registered at Microsoft and Google: ``/microsoft_outlook/confirm`` and
``/google_gmail/confirm``. They never raise a server error: every failure renders a
page saying what to do. Client registrations and server pages are for admins; a
grant's page and *Reconnect* also for its owner (``mailservers.oauth_access``).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from knowlix.decorators import AuthenticatedHttpRequest, admin_required
from knowlix.users import is_admin
from mailservers.errors import (
    MailServerError,
    OAuthConfigError,
    OAuthProviderUnavailable,
)
from mailservers.oauth import config
from mailservers.oauth.forms import OAuthClientsForm
from mailservers.oauth_access import get_grant_for_user, get_server_for_user
from mailservers.services import oauth_connect as services

logger = logging.getLogger(__name__)

PERMISSIONS = {
    config.OUTLOOK: [
        "SMTP.Send",
        "IMAP.AccessAsUser.All",
        "offline_access",
        "openid, profile, email",
    ],
    config.GMAIL: ["https://mail.google.com/", "openid", "…/auth/userinfo.email"],
}


@admin_required
def oauth_settings(request: HttpRequest) -> HttpResponse:
    form = OAuthClientsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "OAuth client registrations saved.")
        return redirect("mailservers:oauth-settings")
    providers = [
        {
            "name": "Outlook 365",
            "redirect_url": config.redirect_url(config.OUTLOOK),
            "permissions": PERMISSIONS[config.OUTLOOK],
        },
        {
            "name": "Gmail",
            "redirect_url": config.redirect_url(config.GMAIL),
            "permissions": PERMISSIONS[config.GMAIL],
        },
    ]
    return render(
        request,
        "mailservers/oauth/settings.html",
        {"form": form, "providers": providers},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def connect_account(
    request: AuthenticatedHttpRequest, kind: str, server_id: int
) -> HttpResponse:
    """GET: the server's account status (admins); POST: go sign in at
    Microsoft/Google (admins, or the owner of the server's grant to reconnect it)."""
    write = request.method == "POST"
    server = get_server_for_user(request.user, kind, server_id, write=write)
    if not write:
        if not is_admin(request.user):
            raise PermissionDenied("Only administrators may open server settings.")
        return render(
            request,
            "mailservers/oauth/connect.html",
            {"server": server, "kind": kind, "server_url": services.server_url(server)},
        )
    provider = services.provider_for(server)
    if provider is None:
        messages.error(
            request, "Choose Outlook OAuth or Gmail OAuth as authentication first."
        )
        return redirect(_back_url(request, server))
    if not request.session.session_key:
        request.session.save()
    assert request.session.session_key is not None  # save() assigned one
    try:
        url = services.start_authorization(
            user=request.user,
            session_key=request.session.session_key,
            provider=provider,
            server_kind=kind,
            server_id=server.pk,
        )
    except (OAuthConfigError, OAuthProviderUnavailable) as exc:
        logger.warning(
            "OAuth connect for %s #%s failed: %s", kind, server_id, exc.detail
        )
        messages.error(request, exc.user_message)
        return redirect(_back_url(request, server))
    return redirect(url)


def _back_url(request: AuthenticatedHttpRequest, server: services.MailServer) -> str:
    """Where a connect that could not start sends the user back to."""
    grant = server.oauth_grant
    if grant is None:
        return services.server_url(server)
    return services.landing_url(user=request.user, grant=grant, server=server)


def confirm(request: AuthenticatedHttpRequest, provider: str) -> HttpResponse:
    """The provider sends the browser back here with ``code`` and ``state``."""
    params = {key: request.GET.get(key, "") for key in request.GET}
    try:
        grant, server = services.complete_authorization(
            user=request.user,
            session_key=request.session.session_key or "",
            provider=provider,
            params=params,
        )
    except MailServerError as exc:
        logger.warning("OAuth confirm (%s) refused: %s", provider, exc.detail)
        status = 400
        if isinstance(exc, OAuthProviderUnavailable):
            status = 502
        elif isinstance(exc, services.OAuthReconnectRefused):
            status = 403
        return render(
            request,
            "mailservers/oauth/confirm_error.html",
            {
                "message": exc.user_message,
                "provider": provider,
                "is_admin": is_admin(request.user),
            },
            status=status,
        )
    messages.success(
        request,
        f"{grant.get_provider_display()} account {grant.account_address} connected.",
    )
    return redirect(services.landing_url(user=request.user, grant=grant, server=server))


@login_required
@require_GET
def grant_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The account's status and *Reconnect* per server: admins and its owner."""
    grant = get_grant_for_user(request.user, pk)
    return render(
        request,
        "mailservers/oauth/grant_detail.html",
        {
            "grant": grant,
            "servers": services.servers_of_grant(grant, user=request.user),
            "is_owner_only": not is_admin(request.user),
        },
    )


urlpatterns = [
    path("oauth/", oauth_settings, name="oauth-settings"),
    path(
        "oauth/connect/<str:kind>/<int:server_id>/",
        connect_account,
        name="oauth-connect",
    ),
    path("oauth/grants/<int:pk>/", grant_detail, name="oauth-grant"),
]
# Mounted at the site root: /microsoft_outlook/confirm and /google_gmail/confirm.
root_urlpatterns = [
    path(
        "microsoft_outlook/confirm",
        confirm,
        {"provider": config.OUTLOOK},
        name="oauth-outlook-confirm",
    ),
    path(
        "google_gmail/confirm",
        confirm,
        {"provider": config.GMAIL},
        name="oauth-gmail-confirm",
    ),
]
