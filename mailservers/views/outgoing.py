"""Outgoing mail pages: servers, the Email queue (technical) and the Local mailbox.

Thin views: parse, check access, call one service, render. Servers and the queue
need an admin in developer mode; the Local mailbox (what the mail catcher caught)
any admin, so a new user can follow a message from a ticket to the mailbox.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from knowlix import params
from knowlix.decorators import admin_required, technical_required
from knowlix.html import block_remote_images, sanitize_html
from mailservers.localmailbox_forms import LocalReplyForm
from mailservers.models import (
    PRESETS,
    CaughtMail,
    OutgoingMail,
    OutgoingRecipient,
    OutgoingServer,
)
from mailservers.oauth_notices import send_reconnect_notices
from mailservers.outgoing_forms import OutgoingServerForm
from mailservers.services import localmailbox as localmailbox_services
from mailservers.services import outgoing as services
from mailservers.views import shared

PAGE_SIZE = 50


# --- Outgoing Mail Servers -------------------------------------------------------------


@technical_required
def outgoing_list(request: HttpRequest) -> HttpResponse:
    servers = OutgoingServer.objects.select_related("oauth_grant").order_by(
        "priority", "id"
    )
    return render(
        request,
        "mailservers/outgoing/list.html",
        {
            "servers": servers,
            "presets": PRESETS,
            "use_custom": params.get_bool_param(params.USE_CUSTOM_SERVERS),
            "default_server": services.describe_default_server(),
            "default_from": params.default_from_address(),
        },
    )


@technical_required
def outgoing_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    server = get_object_or_404(OutgoingServer, pk=pk) if pk else OutgoingServer()
    preset = request.GET.get("preset", "")
    form = OutgoingServerForm(
        request.POST or None, instance=server, preset=preset, prefix="server"
    )
    if request.method == "POST" and form.is_valid():
        server = form.save()
        messages.success(request, shared.saved(server.name))
        for warning in form.warnings:
            messages.warning(request, warning)
        return redirect(server.get_absolute_url())
    return render(
        request,
        "mailservers/outgoing/form.html",
        {
            "form": form,
            "server": server,
            "preset": PRESETS.get(form.preset or ""),
            **shared.page_urls(kind="outgoing", pk=server.pk),
        },
        status=400 if form.is_bound else 200,
    )


@technical_required
def outgoing_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The server's page: state, last success and error, its actions.

    A POST here is a save from the edit form this URL used to show.
    """
    if request.method == "POST":
        return outgoing_edit(request, pk)
    server = get_object_or_404(
        OutgoingServer.objects.select_related("oauth_grant"), pk=pk
    )
    context = {
        "server": server,
        "waiting_count": server.mails.filter(state__in=OutgoingMail.PENDING).count(),
        **shared.page_urls(kind="outgoing", pk=server.pk),
    }
    return render(request, "mailservers/outgoing/detail.html", context)


@technical_required
@require_POST
def outgoing_test(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_object_or_404(
        OutgoingServer.objects.select_related("oauth_grant"), pk=pk
    )
    check = services.check_server_connection(server=server)
    send_reconnect_notices()  # the test may have found the OAuth grant revoked
    if check.ok:
        messages.success(request, shared.test_ok(check.message))
    else:
        messages.error(request, shared.test_failed(check.message))
    return redirect(server.get_absolute_url())


@technical_required
@require_POST
def outgoing_test_default(request: HttpRequest) -> HttpResponse:
    check = services.check_server_connection(server=None)
    (messages.success if check.ok else messages.error)(request, check.message)
    return redirect("mailservers:outgoing-list")


@technical_required
def outgoing_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    server = get_object_or_404(OutgoingServer, pk=pk)
    if request.method != "POST":
        waiting = server.mails.filter(state__in=OutgoingMail.PENDING).count()
        consequence = (
            f"Its {waiting} waiting mail will leave through the server chosen "
            "again for each one."
            if waiting
            else "No mail is waiting for it."
        )
        context = {
            "server": server,
            "consequence": consequence,
            "back_url": server.get_absolute_url(),
        }
        return render(request, "mailservers/_confirm_delete.html", context)
    server.delete()  # its queued mail is given a server again (reselect)
    messages.success(request, shared.deleted(server.name))
    return redirect("mailservers:outgoing-list")


# --- Email queue -----------------------------------------------------------------------


@technical_required
def queue(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    mails = (
        OutgoingMail.objects.defer("raw")
        .select_related("server")
        .prefetch_related(
            Prefetch("recipients", queryset=OutgoingRecipient.objects.order_by("id"))
        )
        .order_by("-created_at", "-id")
    )
    query = request.GET.get("q", "").strip()[:200]
    server: str | None = request.GET.get("server", "")
    searched = OutgoingMail.objects.all()
    if query:  # subject, sender, a recipient's address or the Message-ID
        searched = searched.filter(
            Q(subject__icontains=query)
            | Q(from_address__icontains=query)
            | Q(message_id__icontains=query)
            | Q(pk__in=OutgoingRecipient.objects.filter(
                address__icontains=query).values("mail_id"))
        )  # fmt: skip
    servers = sorted(
        set(OutgoingMail.objects.order_by().values_list("server_label", flat=True))
    )
    if server in servers and "server" in request.GET:
        searched = searched.filter(server_label=server)
    else:
        server = None
    mails = mails.filter(pk__in=searched.values("pk")) if query or server else mails
    if state in OutgoingMail.State.values:
        mails = mails.filter(state=state)
    counts = dict(
        searched.order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    page = Paginator(mails, PAGE_SIZE).get_page(request.GET.get("page"))
    states = [
        (value, label, counts.get(value, 0))
        for value, label in OutgoingMail.State.choices
    ]
    keep = request.GET.copy()
    keep.pop("page", None)
    filters = keep.copy()
    filters.pop("state", None)
    return render(
        request,
        "mailservers/outgoing/queue.html",
        {
            "page": page,
            "state": state,
            "states": states,
            "total": sum(counts.values()),
            "query": query,
            "server": server,
            "servers": servers,
            "keep": keep.urlencode(),  # for the pager: every filter but the page
            "filters": filters.urlencode(),  # for the state buttons
        },
    )


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    state = request.POST.get("state", "")
    response = redirect("mailservers:queue")
    if state in OutgoingMail.State.values:
        response["Location"] += f"?state={state}"
    return response


@technical_required
@require_POST
def queue_retry(request: HttpRequest, pk: int) -> HttpResponse:
    uncertain = OutgoingMail.objects.filter(pk=pk, uncertain=True).exists()
    if uncertain and request.POST.get("confirm") != "1":
        messages.warning(
            request,
            "This mail may already have arrived (the worker or the connection "
            "stopped after it was sent): check with the recipient, then use "
            "Retry anyway.",
        )
    else:
        outcome = services.retry_mail_now(mail_id=pk)
        (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return _back_to_queue(request)


@technical_required
@require_POST
def queue_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    if services.cancel_mail(mail_id=pk):
        messages.success(request, "The mail is cancelled.")
    else:
        messages.error(request, "Too late: the mail is being sent or already done.")
    return _back_to_queue(request)


# --- Local mailbox ---------------------------------------------------------------------


@admin_required
def localmailbox(request: HttpRequest) -> HttpResponse:
    mails = CaughtMail.objects.defer("raw").order_by("-received_at", "-id")
    page = Paginator(mails, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "mailservers/outgoing/localmailbox.html", {"page": page})


def _parse(caught: CaughtMail) -> EmailMessage:
    return email.message_from_bytes(bytes(caught.raw), policy=email.policy.default)


def _render_detail(
    request: HttpRequest,
    caught: CaughtMail,
    *,
    form: LocalReplyForm | None = None,
    reply: localmailbox_services.ReplyOutcome | None = None,
    status: int = 200,
) -> HttpResponse:
    msg = _parse(caught)
    html_part = msg.get_body(preferencelist=("html",))
    text_part = msg.get_body(preferencelist=("plain",))
    attachments = [
        (index, part.get_filename() or "attachment", part.get_content_type())
        for index, part in enumerate(msg.iter_attachments())
    ]
    view = request.GET.get("view") or ("html" if html_part is not None else "text")
    return render(
        request,
        "mailservers/outgoing/localmailbox_detail.html",
        {
            "caught": caught,
            "view": view,
            # Remote images stay out, as in feeds (the page's policy refuses them).
            "html": block_remote_images(sanitize_html(html_part.get_content()))
            if html_part
            else "",
            "text": text_part.get_content() if text_part else "",
            "headers": list(msg.items()),
            "attachments": attachments,
            "routes": localmailbox_services.landed_routes(caught.routing_routes),
            "reply_as": localmailbox_services.reply_identity(caught),
            "reply_form": form or LocalReplyForm(),
            "reply": reply,
        },
        status=status,
    )


@admin_required
def localmailbox_detail(request: HttpRequest, pk: int) -> HttpResponse:
    caught = get_object_or_404(CaughtMail, pk=pk)
    reply_id = request.GET.get("reply", "")
    reply = (
        localmailbox_services.get_reply_outcome(int(reply_id))
        if reply_id.isdigit()
        else None
    )
    return _render_detail(request, caught, reply=reply)


@admin_required
@require_POST
def localmailbox_reply(request: HttpRequest, pk: int) -> HttpResponse:
    """Answer a caught mail as its recipient, through the routing pipeline."""
    caught = get_object_or_404(CaughtMail, pk=pk)
    form = LocalReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            reply = localmailbox_services.reply_to_caught_mail(
                caught=caught,
                body=form.cleaned_data["body"],
                attachment=form.cleaned_data["attachment"],
            )
        except localmailbox_services.NoReplyAddress as exc:
            form.add_error(None, exc.user_message)
        else:
            url = caught.get_absolute_url()
            if reply.inbound_id is None:  # seen before: nothing new was stored
                messages.warning(request, f"Reply {reply.outcome}: {reply.reason}")
                return redirect(url)
            return redirect(f"{url}?reply={reply.inbound_id}#reply-outcome")
    return _render_detail(request, caught, form=form, status=400)


@admin_required
def localmailbox_attachment(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    caught = get_object_or_404(CaughtMail, pk=pk)
    parts = list(_parse(caught).iter_attachments())
    if not 0 <= index < len(parts):
        return HttpResponse(status=404)
    part = parts[index]
    response = HttpResponse(
        part.get_payload(decode=True) or b"", content_type="application/octet-stream"
    )
    disposition = content_disposition_header(
        as_attachment=True, filename=part.get_filename() or "attachment"
    )
    assert disposition is not None  # only None for inline without a file name
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    return response


@admin_required
@require_POST
def localmailbox_clear(request: HttpRequest) -> HttpResponse:
    deleted, _ = CaughtMail.objects.all().delete()
    messages.success(request, f"Local mailbox emptied ({deleted} mail).")
    return redirect("mailservers:localmailbox")


urlpatterns = [
    path("outgoing/", outgoing_list, name="outgoing-list"),
    path("outgoing/new/", outgoing_edit, name="outgoing-create"),
    path("outgoing/<int:pk>/", outgoing_detail, name="outgoing-detail"),
    path("outgoing/<int:pk>/edit/", outgoing_edit, name="outgoing-edit"),
    path("outgoing/<int:pk>/test/", outgoing_test, name="outgoing-test"),
    path("outgoing/default/test/", outgoing_test_default, name="outgoing-test-default"),
    path("outgoing/<int:pk>/delete/", outgoing_delete, name="outgoing-delete"),
    path("queue/", queue, name="queue"),
    path("queue/<int:pk>/retry/", queue_retry, name="queue-retry"),
    path("queue/<int:pk>/cancel/", queue_cancel, name="queue-cancel"),
    path("local-mailbox/", localmailbox, name="localmailbox"),
    path("local-mailbox/clear/", localmailbox_clear, name="localmailbox-clear"),
    path("local-mailbox/<int:pk>/", localmailbox_detail, name="localmailbox-detail"),
    path(
        "local-mailbox/<int:pk>/reply/",
        localmailbox_reply,
        name="localmailbox-reply",
    ),
    path(
        "local-mailbox/<int:pk>/attachments/<int:index>/",
        localmailbox_attachment,
        name="localmailbox-attachment",
    ),
]
