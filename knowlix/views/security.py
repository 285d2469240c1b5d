"""Logins: the admins' unlock of locked-out logins (django-axes) and the password
reset by email, sent through Knowlix's own outgoing queue (never Django's
EmailBackend, which goes nowhere here)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from knowlix import params
from knowlix.decorators import admin_required
from mailservers.errors import MailServerError
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import MailRecipient, queue_mail

RESET_ID_PREFIX = "knowlix-reset"  # every reset mail's Message-ID starts so
RESETS_PER_HOUR = 3  # reset mails to one address: anyone may ask, nobody mail-bombs


@admin_required
def locked_logins(request: HttpRequest) -> HttpResponse:
    """Logins with failed attempts; those at the limit are locked out."""
    attempts = AccessAttempt.objects.order_by("-attempt_time")[:200]
    return render(
        request,
        "knowlix/locked_logins.html",
        {"attempts": attempts, "limit": settings.AXES_FAILURE_LIMIT},
    )


@admin_required
@require_POST
def unlock_login(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = get_object_or_404(AccessAttempt, pk=pk)
    reset(ip=attempt.ip_address, username=attempt.username)
    messages.success(request, f"The login {attempt.username} is unlocked.")
    return redirect("knowlix:locked-logins")


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, its mail queued like every mail Knowlix sends."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        since = timezone.now() - dt.timedelta(hours=1)
        sent = OutgoingRecipient.objects.filter(
            address__iexact=to_email,
            mail__created_at__gte=since,
            mail__message_id__startswith=f"<{RESET_ID_PREFIX}.",
        ).count()
        if sent >= RESETS_PER_HOUR:
            return  # the page says the same: a link is on its way already
        context = {**context, "base_url": settings.KNOWLIX_BASE_URL.rstrip("/")}
        subject = render_to_string(subject_template_name, context)
        try:
            queue_mail(
                from_address=params.default_from_address(),
                from_name="Knowlix",
                recipients=[MailRecipient(address=to_email)],
                subject=" ".join(subject.split()),
                body_text=render_to_string(email_template_name, context),
                auto_submitted=True,
                message_id=(
                    f"<{RESET_ID_PREFIX}.{uuid.uuid4().hex}@{params.catchall_domain()}>"
                ),
            )
        except MailServerError:
            # The page says the same whether or not the address exists: a mail
            # that cannot be queued is logged by the queue, never shown here.
            return


password_reset = auth_views.PasswordResetView.as_view(
    form_class=QueuedPasswordResetForm,
    template_name="registration/password_reset_form.html",
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt",
    success_url=reverse_lazy("password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="registration/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="registration/password_reset_confirm.html",
    success_url=reverse_lazy("password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="registration/password_reset_complete.html"
)
