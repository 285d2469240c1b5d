"""Incoming mail server pages (Settings > Technical > Email; admins in developer mode).

List, detail, create/edit, *Test connection* (logs in, confirms the server and reports a
precise error) and *Fetch now* (queues a poll; the page polls a small status fragment
with htmx for progress). The words and layout are the outgoing pages' (views/shared.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from knowlix.decorators import admin_required, technical_required
from mailservers.errors import MailServerError
from mailservers.models import FetchedMessage, IncomingServer
from mailservers.oauth.presets import form_uses_oauth
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.server_rules import ServerFormRules
from mailservers.services.incoming_connect import (
    check_incoming_server,
    save_incoming_server,
)
from mailservers.tasks.incoming import poll_server
from mailservers.views import shared

Server = IncomingServer


class IncomingServerForm(ServerFormRules, forms.ModelForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted. Leave empty to keep the current password."),
    )

    class Meta:
        model = IncomingServer
        fields = [
            "name",
            "kind",
            "host",
            "port",
            "security",
            "auth_method",
            "username",
            "password",
            "folder",
            "after_store",
            "move_to_folder",
            "default_action",
            "default_team",
            "poll_interval_minutes",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = self.fields["default_team"]
        assert isinstance(team, forms.ModelChoiceField)
        team.empty_label = _("No team")
        self.init_rules()  # the password row stays: the page hides it for sign-in
        if self.uses_oauth:
            # Connecting the account sets the user name, and an empty host gets
            # the provider's (apply_oauth_rules, on save, which drops a password).
            self.fields["host"].required = False
            self.fields["host"].help_text = _(
                "Empty: imap.gmail.com or outlook.office365.com."
            )
            self.fields["username"].required = False
            self.fields["username"].help_text = _(
                "Set to the connected account's address."
            )

    @property
    def uses_oauth(self) -> bool:
        """True when the form is for an Outlook or Gmail sign-in server."""
        return form_uses_oauth(self)

    def clean_password(self) -> str:
        value = self.cleaned_data.get("password") or ""
        if not value and self.instance.pk:
            return self.instance.password or ""  # unchanged
        return value

    def clean(self) -> dict:
        data = super().clean()
        assert data is not None  # Form.clean() returns cleaned_data
        kind, after = data.get("kind"), data.get("after_store")
        if kind == Server.Kind.POP3 and after in (
            Server.AfterStore.MARK_SEEN,
            Server.AfterStore.MOVE,
        ):
            self.add_error(
                "after_store", _("POP3 can only keep or delete stored mail.")
            )
        target = (data.get("move_to_folder") or "").strip()
        if after == Server.AfterStore.MOVE and not target:
            self.add_error("move_to_folder", _("Name the folder to move mail to."))
        elif after == Server.AfterStore.MOVE and target == data.get("folder"):
            self.add_error(
                "move_to_folder", _("Choose a folder other than the polled one.")
            )
        if data.get("auth_method") == Server.AuthMethod.PASSWORD and not data.get(
            "password"
        ):
            self.add_error("password", _("Enter the mailbox password."))
        if data.get("poll_interval_minutes") == 0:
            self.add_error("poll_interval_minutes", _("Poll at least every minute."))
        return data


@technical_required
def server_list(request: HttpRequest) -> HttpResponse:
    servers = IncomingServer.objects.select_related("oauth_grant")
    return render(request, "mailservers/incoming/list.html", {"servers": servers})


@admin_required
def server_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    server = get_object_or_404(IncomingServer, pk=pk) if pk else IncomingServer()
    form = IncomingServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        server = save_incoming_server(server=form.instance, changed=form.changed_data)
        messages.success(request, shared.saved(server.name))
        for warning in form.warnings:
            messages.warning(request, warning)
        return redirect(server.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "server": server,
        **shared.page_urls(kind="incoming", pk=server.pk),
    }
    return render(request, "mailservers/incoming/form.html", context, status=status)


@admin_required
def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_object_or_404(
        IncomingServer.objects.select_related("oauth_grant"), pk=pk
    )
    oversize = server.fetched_messages.filter(state=FetchedMessage.State.OVERSIZE)[:20]
    since = _since(request)
    context = {
        "server": server,
        "since": since,
        "phase": fetch_phase(server, since),
        "fetched_count": server.fetched_messages.count(),
        "oversize": oversize,
        **shared.page_urls(kind="incoming", pk=server.pk),
    }
    return render(request, "mailservers/incoming/detail.html", context)


@admin_required
@require_POST
def server_test(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_object_or_404(IncomingServer, pk=pk)
    try:
        summary = check_incoming_server(server=server)
    except MailServerError as exc:  # stored on the server by the service
        send_reconnect_notices()  # the test may have found the OAuth grant revoked
        messages.error(request, shared.test_failed(exc.user_message))
    else:
        detail = _("%(summary)s; server confirmed") % {"summary": summary}
        messages.success(request, shared.test_ok(detail))
    return redirect(server.get_absolute_url())


@admin_required
@require_POST
def server_fetch(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_object_or_404(IncomingServer, pk=pk)
    since = timezone.now()
    poll_server.delay_on_commit(server.pk)
    messages.info(request, _("Fetching mail from %s…") % server.name)
    return redirect(f"{server.get_absolute_url()}?since={since.isoformat()}")


@admin_required
def server_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status fragment; it keeps polling itself while a fetch is pending."""
    server = get_object_or_404(IncomingServer, pk=pk)
    since = _since(request)
    context = {"server": server, "since": since, "phase": fetch_phase(server, since)}
    return render(request, "mailservers/incoming/_status.html", context)


@admin_required
def server_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    server = get_object_or_404(IncomingServer, pk=pk)
    if request.method != "POST":
        context = {
            "server": server,
            "consequence": _(
                "Knowlix stops polling it; the mail already imported stays on "
                "its records."
            ),
            "back_url": server.get_absolute_url(),
        }
        return render(request, "mailservers/_confirm_delete.html", context)
    server.delete()
    messages.success(request, shared.deleted(server.name))
    return redirect("mailservers:incoming-list")


def fetch_phase(server: IncomingServer, since: dt.datetime | None) -> str:
    """Where the fetch started at ``since`` is: idle, waiting, running, failed, done."""
    if server.is_polling:
        return "running"
    if since is None:
        return "idle"
    if server.last_poll_at is None or server.last_poll_at < since:
        return "waiting"
    if server.last_error_at and server.last_error_at >= since:
        return "failed"
    return "done"


def _since(request: HttpRequest) -> dt.datetime | None:
    """When *Fetch now* was pressed (from the query string), if at all."""
    value = request.GET.get("since", "").replace(" ", "+")
    return parse_datetime(value) if value else None


urlpatterns = [
    path("incoming/", server_list, name="incoming-list"),
    path("incoming/new/", server_form, name="incoming-create"),
    path("incoming/<int:pk>/", server_detail, name="incoming-detail"),
    path("incoming/<int:pk>/edit/", server_form, name="incoming-edit"),
    path("incoming/<int:pk>/test/", server_test, name="incoming-test"),
    path("incoming/<int:pk>/fetch/", server_fetch, name="incoming-fetch"),
    path("incoming/<int:pk>/status/", server_status, name="incoming-status"),
    path("incoming/<int:pk>/delete/", server_delete, name="incoming-delete"),
]
