"""OAuth pages: client registrations, *Connect your account*, the confirm endpoints.

The confirm endpoints live at the site root (``root_urlpatterns``) because their URLs
are registered at Microsoft and Google: ``/microsoft_outlook/confirm`` and
``/google_gmail/confirm``. They never raise a server error: every failure renders a
page saying what to do.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from knowlix.decorators import AuthenticatedHttpRequest, admin_required
from mailservers.errors import (
    MailServerError,
    OAuthConfigError,
    OAuthProviderUnavailable,
)
from mailservers.models import OAuthGrant
from mailservers.oauth import config
from mailservers.oauth.forms import OAuthClientsForm
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


@admin_required
@require_http_methods(["GET", "POST"])
def connect_account(
    request: AuthenticatedHttpRequest, kind: str, server_id: int
) -> HttpResponse:
    """GET: the server's account status; POST: go sign in at Microsoft/Google."""
    if kind not in services.SERVER_MODELS:
        raise Http404
    try:
        server = services.get_server(kind=kind, server_id=server_id)
    except ObjectDoesNotExist as exc:
        raise Http404 from exc
    if request.method == "GET":
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
        return redirect(services.server_url(server))
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
        return redirect(services.server_url(server))
    return redirect(url)


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
        status = 502 if isinstance(exc, OAuthProviderUnavailable) else 400
        return render(
            request,
            "mailservers/oauth/confirm_error.html",
            {"message": exc.user_message, "provider": provider},
            status=status,
        )
    messages.success(
        request,
        f"{grant.get_provider_display()} account {grant.account_address} connected.",
    )
    return redirect(services.server_url(server, fallback=grant.get_absolute_url()))


@admin_required
def grant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(OAuthGrant, pk=pk)
    return render(
        request,
        "mailservers/oauth/grant_detail.html",
        {"grant": grant, "servers": services.servers_of_grant(grant)},
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
