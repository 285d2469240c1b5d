"""Forms of the record feed: composer, followers, activities."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from email.utils import getaddresses
from typing import Any, TypedDict, cast

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import urlize
from django.utils.translation import gettext_lazy as _

from feed.mentions import unknown_mentions
from feed.models import ActivityType, Message
from knowlix.users import PersonChoiceField, active_people
from mailservers.addresses import InvalidAddress, smtp_address


def text_as_html(text: str) -> str:
    """Typed plain text as HTML: escaped, links made clickable, paragraphs kept."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip())
    return "".join(
        "<p>" + urlize(p, nofollow=True, autoescape=True).replace("\n", "<br>") + "</p>"
        for p in paragraphs
        if p
    )


def _with_name(name: str, address: str) -> str:
    """``"Name" <address>``, parsed back alike by ``getaddresses`` (commas, quotes
    and non-ASCII included)."""
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


class MessageArgs(TypedDict):
    """The composer's arguments of ``feed.services.post_message``."""

    kind: str
    subject: str
    body_html: str
    body_text: str
    recipients: list[str]
    cc: list[str]
    attachments: list[UploadedFile]


class ScheduleArgs(TypedDict):
    """The composer's arguments of ``feed.scheduled.schedule_message``."""

    subject: str
    body_text: str
    recipients: list[str]
    cc: list[str]
    send_at: dt.datetime


class ActivityArgs(TypedDict):
    """The arguments of ``feed.services.schedule_activity`` the form gives."""

    activity_type: ActivityType
    summary: str
    due_date: dt.date | None
    assignee: User
    note: str


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list[UploadedFile]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class MessageForm(forms.Form):
    """*Send message* (kind email) and *Log note* (kind note) share this form."""

    kind = forms.ChoiceField(
        choices=[
            (Message.Kind.EMAIL, _("Send message")),
            (Message.Kind.NOTE, _("Log note")),
        ],
        widget=forms.HiddenInput,
    )
    subject = forms.CharField(max_length=200, required=False)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        strip=True,
        label=_("Message"),
    )
    recipients = forms.CharField(
        required=False,
        label=_("To"),
        help_text=_(
            "Addresses to add, separated by commas: they get this mail together, "
            "as typed. Each follower gets a mail of its own."
        ),
    )
    cc = forms.CharField(required=False, label=_("Cc"))
    attachments = MultipleFileField(label=_("Attach files"))
    send_at = forms.DateTimeField(
        required=False,
        label=_("Send later"),
        help_text=_("Empty: send now. Until it leaves you can change or cancel it."),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )

    def _clean_addresses(self, name: str) -> list[str]:
        """Each address checked as the outgoing queue checks it (IDN domains and
        non-ASCII local parts are fine; anything SMTP cannot carry is not)."""
        raw = self.cleaned_data.get(name, "")
        addresses, errors = [], []
        for display, address in getaddresses([raw]):
            if not address:
                continue
            try:
                smtp_address(address)
            except InvalidAddress as exc:
                errors.append(exc.user_message)
                continue
            addresses.append(_with_name(display, address))
        if errors:
            raise ValidationError(errors)
        if raw.strip() and not addresses:
            raise ValidationError(
                _("%(value)s is not an email address."), params={"value": raw.strip()}
            )
        return addresses

    def clean_recipients(self) -> list[str]:
        return self._clean_addresses("recipients")

    def clean_cc(self) -> list[str]:
        return self._clean_addresses("cc")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("body") and not data.get("attachments"):
            self.add_error("body", _("Write something or attach a file."))
        if data.get("kind") == Message.Kind.NOTE and data.get("recipients"):
            self.add_error("recipients", _("Notes are internal: no recipients."))
        if data.get("kind") == Message.Kind.NOTE and data.get("cc"):
            self.add_error("cc", _("Notes are internal: no recipients."))
        self._check_send_at(data)
        unknown = unknown_mentions(data.get("body", ""))
        if unknown:
            names = ", ".join("@" + name for name in unknown)
            self.add_error(
                "body",
                _("No colleague is called %(names)s: pick a name from the list.")
                % {"names": names},
            )
        self._check_sizes(data)
        return data

    def _check_send_at(self, data: dict[str, Any]) -> None:
        send_at = data.get("send_at")
        if send_at is None:
            return
        if data.get("kind") != Message.Kind.EMAIL:  # the note form has no send_at
            self.add_error("body", _("Only an email can be sent later."))
        elif send_at <= timezone.now():
            self.add_error("send_at", _("Choose a time in the future."))
        elif data.get("attachments"):
            self.add_error(
                "send_at",
                _(
                    "Files cannot be sent later yet: send now, or schedule without files."
                ),
            )

    def _check_sizes(self, data: dict[str, Any]) -> None:
        """One post's files together may not exceed ``KNOWLIX_POST_MAX_BYTES``; an
        email is refused now if the outgoing queue would refuse it
        (``KNOWLIX_MAIL_MAX_BYTES``: attachments travel base64-encoded, 4/3 of their
        size, beside the text and HTML renderings of the body)."""
        files = sum(f.size for f in data.get("attachments") or [])
        checks = [
            (
                files,
                settings.KNOWLIX_POST_MAX_BYTES,
                _(
                    "These files are %(size)s together; one message may carry at "
                    "most %(limit)s. Send fewer or smaller files."
                ),
            )
        ]
        if data.get("kind") == Message.Kind.EMAIL:
            checks.append(
                (
                    files * 4 // 3 + 3 * len(data.get("body", "")),
                    settings.KNOWLIX_MAIL_MAX_BYTES,
                    _(
                        "With these files the email would be about %(size)s, above "
                        "the %(limit)s limit for one email. Send fewer or smaller "
                        "files."
                    ),
                )
            )
        for size, limit, text in checks:
            if size > limit:
                values = {"size": filesizeformat(size), "limit": filesizeformat(limit)}
                self.add_error("attachments", text % values)
                return

    def schedule_kwargs(self) -> ScheduleArgs:
        """Arguments for ``feed.scheduled`` (a form whose ``send_at`` is set)."""
        data = self.cleaned_data
        return {
            "subject": data.get("subject", ""),
            "body_text": data.get("body", ""),
            "recipients": data.get("recipients", []),
            "cc": data.get("cc", []),
            "send_at": data["send_at"],
        }

    def service_kwargs(self) -> MessageArgs:
        """Arguments for ``feed.services.post_message`` (the body is plain text)."""
        data = self.cleaned_data
        text = data.get("body", "")
        return {
            "kind": data["kind"],
            "subject": data.get("subject", ""),
            "body_html": text_as_html(text),
            "body_text": text,
            "recipients": data.get("recipients", []),
            "cc": data.get("cc", []),
            "attachments": data.get("attachments", []),
        }


class ActivityForm(forms.Form):
    activity_type = forms.ModelChoiceField(
        queryset=ActivityType.objects.all(), empty_label=None, label=_("Activity type")
    )
    summary = forms.CharField(max_length=200, required=False)
    due_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: the type's default delay."),
    )
    assignee = PersonChoiceField(
        queryset=active_people(),
        required=False,
        empty_label=_("Me"),
        help_text=_("Empty: you."),
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read the types once: a required select otherwise reads its first choice
        # again (for the required attribute) on every render of the feed panel.
        field = self.fields["activity_type"]
        assert isinstance(field, forms.ModelChoiceField)
        # iter(): a generator, so list() asks no COUNT(*) first.
        field.widget.choices = list(iter(cast("Iterable[Any]", field.choices)))

    def service_kwargs(self, *, user: User) -> ActivityArgs:
        data = self.cleaned_data
        return {
            "activity_type": data["activity_type"],
            "summary": data.get("summary", ""),
            "due_date": data.get("due_date"),
            "assignee": data.get("assignee") or user,
            "note": text_as_html(data.get("note", "")),
        }


class DoneForm(forms.Form):
    feedback = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label=_("Feedback")
    )


class AddFollowerForm(forms.Form):
    user = PersonChoiceField(
        queryset=active_people(), required=False, empty_label=_("A colleague…")
    )
    email = forms.EmailField(required=False, label=_("or a contact's email"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("user") and not data.get("email"):
            raise ValidationError(_("Choose a user or give an email address."))
        return data
