"""Views of the feed: the record panel (htmx), attachments, inbox, my activities.

Every record view goes through ``knowlix.access.get_record_for_user``: a record the
user may not see is a 404, a read-only one refuses writes (403). POSTs answer htmx
with the re-rendered panel and plain browsers with a redirect to the record.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from feed import delivery, scheduled, selectors, services
from feed.errors import FeedError
from feed.forms import ActivityForm, AddFollowerForm, DoneForm, MessageForm
from feed.mentions import find_people, unknown_mentions
from feed.models import (
    Activity,
    Follower,
    Message,
    MessageRecipient,
    Notification,
    ScheduledMessage,
)
from feed.panel import panel_context
from feed.recipients import find_or_create_contact
from feed.targets import can_open_target, get_target_for_user, target_url
from feed.templatetags.feed_tags import INLINE_TYPES
from knowlix.access import can_change_model, get_record_for_user
from knowlix.decorators import AuthenticatedHttpRequest, technical_required
from knowlix.models import Record
from knowlix.redirects import safe_next_url
from knowlix.users import person_label as person


class FeedRequest(AuthenticatedHttpRequest):
    """What the feed's views get: a signed-in user, and django-htmx's details."""

    htmx: HtmxDetails


class PanelForms(TypedDict, total=False):
    """The forms (with their errors) a re-rendered panel shows."""

    message_form: MessageForm
    note_form: MessageForm
    activity_form: ActivityForm
    follower_form: AddFollowerForm


def _panel_response(
    request: FeedRequest,
    record: Record,
    *,
    status: int = 200,
    open_composer: str = "",
    **forms: Unpack[PanelForms],
) -> HttpResponse:
    """htmx: the re-rendered panel. Plain browsers: back to the record (with the
    form's errors as a flash message)."""
    if not request.htmx:
        for form in forms.values():
            for errors in getattr(form, "errors", {}).values():
                flash.error(request, " ".join(errors))
        return redirect(record.get_absolute_url() + "#feed")
    context = panel_context(
        record=record, user=request.user, open_composer=open_composer, **forms
    )
    # What a view flashed: a confirmation, or a refusal (a refused resend, a
    # scheduled mail that already left), shown above the re-rendered panel.
    context["flash_notices"] = list(flash.get_messages(request))
    return render(request, "feed/_feed.html", context, status=status)


@login_required
@require_GET
def panel(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id)
    context = panel_context(record=record, user=request.user)
    return render(request, "feed/_feed.html", context)


@login_required
@require_GET
def feed_changes(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    """The first page of messages, or 304 Not Modified when the feed's stamp is
    the one the page has (``If-None-Match``): what ``static/js/live.js`` polls."""
    record = get_record_for_user(request.user, ct_id, object_id)
    etag = f'"{selectors.feed_stamp(record=record)}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        page = selectors.feed_page(record=record)
        context = {"record": record, "page": page, "messages": page.messages}
        context["record_ct_id"] = ct_id
        response = render(request, "feed/_messages.html", context)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


@login_required
@require_GET
def people(request: FeedRequest) -> JsonResponse:
    """The composer's ``@`` suggestions (``?q=``): ``{"people": [{"username",
    "name"}]}``; with ``?names=a,b``, those of the names that are users' too."""
    if "names" in request.GET:
        names = [n for n in request.GET["names"].split(",") if n][:50]
        text = " ".join("@" + n for n in names)
        unknown = set(unknown_mentions(text))
        return JsonResponse({"known": [n for n in names if n not in unknown]})
    return JsonResponse({"people": find_people(query=request.GET.get("q", ""))})


@login_required
@require_GET
def older_messages(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id)
    before = request.GET.get("before", "")
    page = selectors.feed_page(
        record=record, before_id=int(before) if before.isdigit() else None
    )
    context = {"record": record, "page": page, "messages": page.messages}
    context["record_ct_id"] = ct_id
    context["can_write"] = can_change_model(request.user, type(record))
    return render(request, "feed/_messages.html", context)


@login_required
@require_POST
def post_message_view(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id, write=True)
    form = MessageForm(request.POST, request.FILES)
    is_note = request.POST.get("kind") == Message.Kind.NOTE
    form.auto_id = "note_%s" if is_note else "msg_%s"
    if form.is_valid() and form.cleaned_data.get("send_at"):
        scheduled.schedule_message(
            record=record, author=request.user, **form.schedule_kwargs()
        )
        return _panel_response(request, record)
    if form.is_valid():
        try:
            message = services.post_message(
                record=record, author=request.user, **form.service_kwargs()
            )
        except FeedError as exc:
            form.add_error("attachments", exc.user_message)
        else:
            flash.success(request, _post_confirmation(message))
            return _panel_response(request, record)
    composer = "note" if is_note else "message"
    forms: PanelForms = {"note_form": form} if is_note else {"message_form": form}
    return _panel_response(request, record, status=422, open_composer=composer, **forms)


def _scheduled_for_write(
    request: FeedRequest, scheduled_id: int
) -> tuple[ScheduledMessage, Record]:
    row = get_object_or_404(ScheduledMessage, pk=scheduled_id)
    record = get_record_for_user(
        request.user, row.content_type_id, row.object_id, write=True
    )
    return row, record


@login_required
@require_POST
def scheduled_edit(request: FeedRequest, scheduled_id: int) -> HttpResponse:
    """Change a scheduled email's text, recipients or time (until it leaves)."""
    row, record = _scheduled_for_write(request, scheduled_id)
    form = MessageForm(request.POST, auto_id=f"sch{row.pk}_%s")
    if not form.is_valid() or not form.cleaned_data.get("send_at"):
        for errors in form.errors.values():
            flash.error(request, " ".join(str(e) for e in errors))
        if form.is_valid():
            flash.error(request, _("Choose when to send it, or cancel it."))
        return _panel_response(request, record, status=422)
    try:
        scheduled.update_scheduled_message(scheduled=row, **form.schedule_kwargs())
    except FeedError as exc:
        flash.error(request, exc.user_message)
    return _panel_response(request, record)


@login_required
@require_POST
def scheduled_cancel(request: FeedRequest, scheduled_id: int) -> HttpResponse:
    row, record = _scheduled_for_write(request, scheduled_id)
    try:
        scheduled.cancel_scheduled_message(scheduled=row)
    except FeedError as exc:
        flash.error(request, exc.user_message)
    return _panel_response(request, record)


@login_required
@require_POST
def resend_recipient(request: FeedRequest, recipient_id: int) -> HttpResponse:
    """Resend a message to one failed or bounced recipient (needs write access)."""
    recipient = get_object_or_404(
        MessageRecipient.objects.select_related("message"), pk=recipient_id
    )
    message = recipient.message
    record = get_record_for_user(
        request.user, message.content_type_id, message.object_id, write=True
    )
    try:
        delivery.resend_to_recipient(recipient=recipient)
    except FeedError as exc:
        flash.error(request, exc.user_message)
    return _panel_response(request, record)


@login_required
@require_POST
def follow_view(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id)
    if request.POST.get("action") == "unfollow":
        services.unfollow(record=record, user=request.user)
        flash.success(request, _("You no longer follow this record."))
    else:
        services.follow(record=record, user=request.user)
        flash.success(request, _("You follow this record."))
    return _panel_response(request, record)


@login_required
@require_POST
def add_follower(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id, write=True)
    form = AddFollowerForm(request.POST, auto_id="fol_%s")
    if not form.is_valid():
        return _panel_response(
            request, record, status=422, follower_form=form, open_composer="followers"
        )
    if form.cleaned_data.get("user"):
        user = form.cleaned_data["user"]
        services.follow(record=record, user=user)
        flash.success(request, _("%(name)s follows it now.") % {"name": person(user)})
    if form.cleaned_data.get("email"):
        contact = find_or_create_contact(form.cleaned_data["email"])
        services.follow(record=record, contact=contact)
        flash.success(request, _("%(name)s follows it now.") % {"name": contact})
    return _panel_response(request, record)


def _post_confirmation(message: Message) -> str:
    if message.kind == Message.Kind.NOTE:
        return _("Note logged.")
    count = message.recipients.count()
    if not count:
        return _("Message posted (no one to email).")
    return _("Message queued for %(n)d recipient(s).") % {"n": count}


def _follower_for_write(
    request: FeedRequest, follower_id: int
) -> tuple[Follower, Record]:
    """The follower and its record; one's own subscription needs only read access."""
    follower = get_object_or_404(Follower, pk=follower_id)
    record = get_record_for_user(
        request.user,
        follower.content_type_id,
        follower.object_id,
        write=follower.user_id != request.user.pk,
    )
    return follower, record


@login_required
@require_POST
def remove_follower(request: FeedRequest, follower_id: int) -> HttpResponse:
    follower, record = _follower_for_write(request, follower_id)
    follower.delete()
    flash.success(request, _("%(name)s no longer follows it.") % {"name": follower})
    return _panel_response(request, record)


@login_required
@require_POST
def edit_subscription(request: FeedRequest, follower_id: int) -> HttpResponse:
    follower, record = _follower_for_write(request, follower_id)
    chosen = [int(i) for i in request.POST.getlist("subtypes") if i.isdigit()]
    subtypes = [s for s in selectors.subtypes(record=record) if s.pk in chosen]
    if follower.contact_id:
        subtypes = [s for s in subtypes if not s.internal]
    services.follow(
        record=record,
        user=follower.user,
        contact=follower.contact,
        subtypes=subtypes,
    )
    flash.success(request, _("Subscription saved."))
    return _panel_response(request, record)


@login_required
@require_POST
def schedule_activity(request: FeedRequest, ct_id: int, object_id: int) -> HttpResponse:
    record = get_record_for_user(request.user, ct_id, object_id, write=True)
    form = ActivityForm(request.POST, auto_id="act_%s")
    if not form.is_valid():
        return _panel_response(
            request, record, status=422, activity_form=form, open_composer="activity"
        )
    activity = services.schedule_activity(
        record=record,
        created_by=request.user,
        **form.service_kwargs(user=request.user),
    )
    flash.success(
        request,
        _("%(type)s scheduled for %(name)s, due %(due)s.")
        % {
            "type": activity.activity_type.name,
            "name": person(activity.assignee),
            "due": date_format(activity.due_date),
        },
    )
    return _panel_response(request, record)


def _activity_for_write(
    request: FeedRequest, activity_id: int
) -> tuple[Activity, Record]:
    """The activity and its record; its assignee needs only read access."""
    activity = get_object_or_404(Activity, pk=activity_id)
    record = get_record_for_user(
        request.user,
        activity.content_type_id,
        activity.object_id,
        write=activity.assignee_id != request.user.pk,
    )
    return activity, record


@login_required
@require_POST
def activity_done(request: FeedRequest, activity_id: int) -> HttpResponse:
    activity, record = _activity_for_write(request, activity_id)
    form = DoneForm(request.POST)
    feedback = form.cleaned_data["feedback"] if form.is_valid() else ""
    services.mark_activity_done(activity=activity, user=request.user, feedback=feedback)
    flash.success(
        request, _("%(activity)s marked done.") % {"activity": capfirst(str(activity))}
    )
    if request.POST.get("next") == "my-activities":
        return redirect("feed:my-activities")
    return _panel_response(request, record)


@login_required
@require_POST
def activity_cancel(request: FeedRequest, activity_id: int) -> HttpResponse:
    activity, record = _activity_for_write(request, activity_id)
    services.cancel_activity(activity=activity)
    flash.success(
        request, _("%(activity)s cancelled.") % {"activity": capfirst(str(activity))}
    )
    return _panel_response(request, record)


@login_required
@require_GET
@xframe_options_sameorigin  # the feed previews files in a same-origin iframe
def attachment(request: FeedRequest, attachment_id: int, filename: str) -> FileResponse:
    """Serve a file to users who may see its record; only safe types inline."""
    row = selectors.get_attachment(attachment_id=attachment_id)
    if row is None or row.message is None:
        raise Http404("No such file")
    get_record_for_user(
        request.user, row.message.content_type_id, row.message.object_id
    )
    inline = row.mimetype in INLINE_TYPES and request.GET.get("download") != "1"
    response = FileResponse(
        row.blob.file.open("rb"),
        as_attachment=not inline,
        filename=row.filename,
        content_type=row.mimetype if inline else "application/octet-stream",
    )
    if not (inline and row.is_pdf):  # a sandboxed PDF would not open in Chromium
        response["Content-Security-Policy"] = "sandbox"
    else:  # nor would one under the pages' policy (object-src 'none')
        response._csp_exempt = True  # type: ignore[attr-defined]
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def inbox(request: FeedRequest) -> HttpResponse:
    unread_only = request.GET.get("filter") == "unread"
    qs = selectors.inbox(user=request.user, unread_only=unread_only)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    selectors.attach_records([n.message for n in rows])
    for note in rows:  # access may have been lost since: show no content then
        target = note.message.linked_record
        note.is_visible = target is not None and can_open_target(request.user, target)
        # "TCK-42" for a record; "Sending domain" for what a system notice is about.
        note.target_tag = ""
        if note.is_visible:
            note.target_tag = getattr(target, "record_tag", "") or capfirst(
                target._meta.verbose_name
            )
    context = {
        "page_obj": page,
        "notifications": rows,
        "unread_only": unread_only,
        "unread": selectors.unread_count(request.user),
    }
    return render(request, "feed/inbox.html", context)


@login_required
@require_GET
@never_cache
def unread_count(request: FeedRequest) -> HttpResponse:
    """The top bar's badge: ``{"unread": n}``, polled by ``static/js/unread.js``;
    304 Not Modified when the count is the one the page shows (``If-None-Match``)."""
    count = selectors.unread_count(request.user)
    etag = f'"unread-{count}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = JsonResponse({"unread": count})
    response["ETag"] = etag
    return response


@login_required
@require_POST
def inbox_read_all(request: FeedRequest) -> HttpResponse:
    count = services.mark_notifications_read(user=request.user)
    flash.success(request, _("%(n)d notification(s) marked read.") % {"n": count})
    return redirect("feed:inbox")


@login_required
@require_POST
def notification_read(request: FeedRequest, notification_id: int) -> HttpResponse:
    services.mark_notifications_read(
        user=request.user, notification_ids=[notification_id]
    )
    return redirect(safe_next_url(request, request.POST.get("next"), "feed:inbox"))


@login_required
@require_GET
def notification_open(request: FeedRequest, notification_id: int) -> HttpResponse:
    """Mark the notification read and open its record at the message.

    A notice about something that is not a record (a domain, a server) opens that
    object's page, if the object lets the user open it (``feed.targets``)."""
    note = get_object_or_404(
        Notification.objects.select_related("message"),
        pk=notification_id,
        user=request.user,
    )
    message = note.message
    target = get_target_for_user(
        request.user, message.content_type_id, message.object_id
    )
    services.mark_notifications_read(user=request.user, notification_ids=[note.pk])
    return redirect(target_url(target, message.pk))


@login_required
@require_GET
def my_activities(request: FeedRequest) -> HttpResponse:
    groups = selectors.my_activities(user=request.user)
    return render(
        request, "feed/my_activities.html", {"groups": groups, "done_form": DoneForm()}
    )


@technical_required
@require_GET
def message_list(request: FeedRequest) -> HttpResponse:
    """Technical: every message, newest first (admins in developer mode)."""
    qs = Message.objects.select_related(
        "author_user", "author_contact", "content_type"
    ).order_by("-created_at", "-id")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    selectors.attach_records(rows)
    return render(request, "feed/message_list.html", {"page_obj": page, "rows": rows})


@login_required
@require_POST
def images_always(request: FeedRequest, message_id: int) -> HttpResponse:
    """*Always for this sender*: from now on, this reader sees the remote images of
    the message's sender; back to the message."""
    message = get_object_or_404(Message, pk=message_id)
    record = get_record_for_user(
        request.user, message.content_type_id, message.object_id
    )
    address = services.always_show_images(user=request.user, message=message)
    if address:
        flash.info(
            request, _("Images from %(address)s are shown.") % {"address": address}
        )
    url = record.get_absolute_url() if hasattr(record, "get_absolute_url") else "/"
    return redirect(f"{url}?message={message.pk}#message-{message.pk}")
