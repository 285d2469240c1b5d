"""Turn a parsed message into feed posts and new records (through their services).

Messages are written only through ``feed.services.post_message`` and records only
through ``feed.services.create_record``. Nothing is dropped silently: an HTML
body over the budget is posted as text with the original HTML attached, and an
attachment over the size limit is named in the body (the raw mail is kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.models import ForeignKey, Model
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from feed.attachments import AttachmentInput, max_attachment_bytes
from feed.models import Message
from feed.recipients import FollowerRow
from feed.services import NewPost, new_message_id
from knowlix.html import html_to_text
from knowlix.models import Record, Team
from knowlix.teams import apply_team
from routing.authenticity import Verdict
from routing.matching import Author, is_system_address
from routing.parsing import SUBJECT_TAG_RE, ParsedMessage

# Sanitizing is linear in the size (nh3 is an HTML5 parser), so a size budget is a
# time budget: above it the text body is posted and the HTML kept as a file.
HTML_BUDGET_CHARS = 400_000
# A description is for reading at a glance; the whole mail is in the feed.
DESCRIPTION_CHARS = 20_000


@dataclass
class MailContent:
    body_html: str
    body_text: str
    attachments: list[AttachmentInput]


def build_content(parsed: ParsedMessage) -> MailContent:
    """Bodies and attachments to post, applying the HTML and attachment budgets."""
    notes: list[str] = []
    files: list[AttachmentInput] = []
    limit = max_attachment_bytes()
    for item in parsed.attachments:
        if len(item.content) > limit:
            notes.append(
                _("The attachment %(name)s (%(size)s) exceeds the size limit.")
                % {"name": item.filename, "size": filesizeformat(len(item.content))}
            )
            continue
        files.append(
            AttachmentInput(
                filename=item.filename,
                content=item.content,
                mimetype=item.content_type,
                content_id=item.content_id,
            )
        )
    html, text = parsed.body_html, parsed.body_text
    if len(html) > HTML_BUDGET_CHARS:
        notes.append(
            _("The HTML body (%(size)s) was too large to display; it is attached.")
            % {"size": filesizeformat(len(html.encode("utf-8")))}
        )
        files.append(
            AttachmentInput("original-body.html", html.encode("utf-8"), "text/html")
        )
        text = text or html_to_text(html[:HTML_BUDGET_CHARS])
        html = ""
    if notes:
        text = "\n\n".join([text, *notes]) if text else "\n\n".join(notes)
        if html:
            html += "".join(f"<p><em>{_escape(n)}</em></p>" for n in notes)
    if not html and not text.strip() and not files:
        text = _("(empty message)")
    return MailContent(body_html=html, body_text=text, attachments=files)


def _escape(text: str) -> str:
    from django.utils.html import escape

    return escape(text)


def mail_post(
    *,
    record: Model,
    parsed: ParsedMessage,
    content: MailContent,
    author: Author,
    verdict: Verdict,
    parent: Message | None,
    first_route: bool,
    followers: Sequence[FollowerRow] | None = None,
    is_system_address: Callable[[str], bool] = is_system_address,
) -> NewPost:
    """The received mail as a post on ``record`` (a child of ``parent`` if given),
    for ``post_messages``.

    The first route keeps the mail's Message-ID (threads find it); further routes
    of the same mail get fresh ids, since a Message-ID names one feed message.
    ``followers``: see ``post_message`` (given for a record the mail just created).
    ``is_system_address``: the check, when the caller knows the aliases already."""
    address = parsed.from_address
    email_from = f"{parsed.from_name} <{address}>" if parsed.from_name else address
    return NewPost(
        record=record,
        kind=Message.Kind.EMAIL,
        direction=Message.Direction.INCOMING,
        author=author.user,
        author_contact=None if author.user is not None else author.contact,
        subject=parsed.subject,
        body_html=content.body_html,
        body_text=content.body_text,
        email_from=(email_from or parsed.from_name)[:320],
        message_id=parsed.message_id if first_route else new_message_id(),
        parent=parent,
        # People, not our own machinery (reply+token, aliases, notifications@).
        recipients=[a for _, a in parsed.to + parsed.cc if not is_system_address(a)],
        attachments=content.attachments,
        is_unverified_sender=verdict.is_unverified,
        auth_verdict=verdict.text,
        created_at=None,
        followers=followers,
    )


def new_record(
    *,
    model: type[Record],
    defaults: dict,
    parsed: ParsedMessage,
    author: Author,
    team: Team | None = None,
) -> Record:
    """An unsaved record of ``model`` from the mail: title from the subject, its
    contact, its description (the mail's body), its team's followers and assignee
    (``feed.services.create_records`` saves it)."""
    values = {}
    for name, value in (defaults or {}).items():
        # {"assignee": 7} names the user by id: the field's id attribute takes it.
        field = model._meta.get_field(name)
        values[field.attname if isinstance(field, ForeignKey) else name] = value
    field = model._meta.get_field(model.TITLE_FIELD)
    max_length = getattr(field, "max_length", None) or 200
    subject = record_title(parsed.subject)
    values.setdefault(model.TITLE_FIELD, (subject or _("(no subject)"))[:max_length])
    if model.DESCRIPTION_FIELD and not values.get(model.DESCRIPTION_FIELD):
        values[model.DESCRIPTION_FIELD] = mail_description(parsed)
    record = model.new_from_mail(
        subject=subject, contact=author.contact, defaults=values
    )
    if team is not None:
        apply_team(record=record, team=team)
    return record


def mail_description(parsed: ParsedMessage) -> str:
    """The first mail's body as a record's description: its text (or its HTML as
    text), cut at ``DESCRIPTION_CHARS``."""
    text = parsed.body_text.strip()
    if not text and parsed.body_html:
        text = html_to_text(parsed.body_html[:HTML_BUDGET_CHARS]).strip()
    if len(text) > DESCRIPTION_CHARS:
        text = text[:DESCRIPTION_CHARS].rstrip() + "…"
    return text


# Reply and forward prefixes of the mail clients in use (Re, Fwd, AW, WG, SV, RV,
# TR, Antw), possibly numbered ("Re[2]:"), and our own records' subject tags.
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|rv|tr|antw|r)\s*(?:\[\d+\])?\s*:|"
    + SUBJECT_TAG_RE.pattern
    + r")\s*",
    re.IGNORECASE,
)


def record_title(subject: str) -> str:
    """The title of a record made from a mail: its subject without the leading
    reply/forward prefixes and tags of other records (a forward's new record)."""
    title = subject
    while (shorter := _SUBJECT_PREFIX.sub("", title, count=1)) != title:
        title = shorter
    return title.strip() or subject.strip()
