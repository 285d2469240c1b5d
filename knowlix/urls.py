"""The site's URLs: human-readable paths per app (``/helpdesk/tickets/42/``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseBase
from django.urls import include, path
from health_check.views import HealthCheckView

from knowlix.core_urls import record_urlpatterns
from knowlix.recordviews import MAILING_KIND
from knowlix.views import contacts, home, mailings, ops, records, security, teams
from knowlix.views import settings as settings_views
from mailservers.views.oauth import root_urlpatterns as oauth_root_urlpatterns

knowlix_patterns = [
    path("contacts/", contacts.contact_list, name="contact-list"),
    path("contacts/new/", contacts.contact_form, name="contact-create"),
    path("contacts/<int:pk>/", contacts.contact_detail, name="contact-detail"),
    path("contacts/<int:pk>/edit/", contacts.contact_form, name="contact-edit"),
    path(
        "marketing/mailings/",
        records.record_list,
        {"kind": MAILING_KIND},
        name="mailing-list",
    ),
    path(
        "marketing/mailings/new/",
        records.record_create,
        {"kind": MAILING_KIND},
        name="mailing-create",
    ),
    path(
        "marketing/mailings/<int:pk>/", mailings.mailing_detail, name="mailing-detail"
    ),
    path(
        "marketing/mailings/<int:pk>/edit/", mailings.mailing_edit, name="mailing-edit"
    ),
    path(
        "marketing/mailings/<int:pk>/send/", mailings.mailing_send, name="mailing-send"
    ),
    path("unsubscribe/<str:token>/", mailings.unsubscribe, name="unsubscribe"),
    path("settings/", settings_views.general_settings, name="settings"),
    path(
        "settings/developer-mode/",
        settings_views.toggle_developer_mode,
        name="developer-mode",
    ),
    path(
        "settings/technical/parameters/",
        settings_views.parameter_list,
        name="parameters",
    ),
    path(
        "settings/technical/parameters/<int:pk>/",
        settings_views.parameter_edit,
        name="parameter-edit",
    ),
    path(
        "settings/technical/locked-logins/",
        security.locked_logins,
        name="locked-logins",
    ),
    path(
        "settings/technical/locked-logins/<int:pk>/unlock/",
        security.unlock_login,
        name="locked-login-unlock",
    ),
    path("preferences/", settings_views.preferences, name="preferences"),
    path("settings/teams/", teams.team_list, name="team-list"),
    path("settings/teams/new/", teams.team_edit, name="team-create"),
    path("settings/teams/<int:pk>/", teams.team_edit, name="team-edit"),
    *record_urlpatterns(),
]

# What each compose service's healthcheck asks (docs/deploy.md); /health/ asks all.
HEALTH_CHECKS: dict[str, list[str | tuple[str, dict[str, object]]]] = {
    "web": ["health_check.checks.Database", "knowlix.health.Broker"],
    "worker": [
        ("health_check.contrib.celery.Ping", {"timeout": dt.timedelta(seconds=3)})
    ],
    "beat": ["knowlix.health.Beat"],
    "outbox": ["mailservers.health.Outbox"],
}


def health_view(*parts: str) -> Callable[..., HttpResponseBase]:
    checks = [check for part in parts for check in HEALTH_CHECKS[part]]
    view = HealthCheckView.as_view(checks=checks)
    if "worker" in parts:  # the workers' ping waits seconds: not for strangers
        view = ops.for_this_host_or_token(view)
    return login_not_required(view)


health_patterns = [
    path("", health_view(*HEALTH_CHECKS), name="health"),
    *(
        path(f"{part}/", health_view(part), name=f"health-{part}")
        for part in HEALTH_CHECKS
    ),
]

urlpatterns = [
    path("", home.home, name="home"),
    path("health/", include(health_patterns)),
    path("metrics", ops.metrics, name="metrics"),
    path("setup/", ops.first_admin, name="first-admin"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", security.password_reset, name="password_reset"),
    path(
        "password-reset/sent/",
        security.password_reset_done,
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        security.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        security.password_reset_complete,
        name="password_reset_complete",
    ),
    path("", include((knowlix_patterns, "knowlix"))),
    path("feed/", include("feed.urls")),
    path("settings/technical/email/", include("mailservers.urls")),
    path("settings/technical/routing/", include("routing.urls")),
    path("settings/domains/", include("dnscheck.urls")),
    *oauth_root_urlpatterns,
]
