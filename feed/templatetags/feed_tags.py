"""Template helpers of the feed: the record panel and message bodies."""

from __future__ import annotations

import re
from collections.abc import Callable

from django import template
from django.db.models import Model
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from feed import selectors
from feed.mentions import highlight_mentions
from feed.models import Attachment, Message
from feed.panel import panel_context
from feed.services import message_sender_address
from knowlix.html import block_remote_images, has_remote_image, sanitize_html

register = template.Library()

_CID_SRC = re.compile(r'src="cid:([^"]+)"')
# "On <date>, <someone> wrote:" above a quote: the start of the quoted history.
_QUOTE_INTRO = re.compile(r"^\s*(on\b.*\bwrote:|-+\s*original message\s*-+)\s*$", re.I)
REPLY_EXCERPT_WORDS = 12
# Types a browser may show inline; anything else (SVG, HTML...) is downloaded.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
}


@register.inclusion_tag("feed/_feed.html", takes_context=True)
def feed_panel(context: template.Context, record: Model) -> dict[str, object]:
    """The whole feed of ``record`` for the current user (the record page's panel)."""
    request = context["request"]
    focus = request.GET.get("message", "")
    result = panel_context(
        record=record,
        user=request.user,
        focus_message_id=int(focus) if focus.isdigit() else None,
    )
    result.update(
        request=request,
        csrf_token=context.get("csrf_token"),
        show_images=request.GET.get("images", ""),
        # Only the record page itself: its policy allows remote images for them.
        # Read once, and only if a message has a remote image.
        image_senders=SimpleLazyObject(
            lambda: selectors.image_senders(user=request.user)
        ),
    )
    return result


def attachment_url(attachment: Attachment) -> str:
    return reverse("feed:attachment", args=[attachment.pk, attachment.filename])


@register.filter
def attachment_href(attachment: Attachment) -> str:
    return attachment_url(attachment)


@register.filter
def is_previewable(attachment: Attachment) -> bool:
    return attachment.mimetype in INLINE_TYPES


@register.filter
def has_remote_images(message: Message) -> bool:
    return has_remote_image(sanitize_html(message.body_html))


def shows_images(context: template.Context, message: Message) -> bool:
    """The reader asked for this message's images, or always shows its sender's."""
    if str(context.get("show_images")) == str(message.pk):
        return True
    senders = context.get("image_senders") or ()
    return not message.is_unverified_sender and (
        message_sender_address(message) in senders
    )


@register.simple_tag(takes_context=True)
def images_state(context: template.Context, message: Message) -> str:
    """ "" (no remote image), "shown" or "blocked": for the note above a body."""
    if not has_remote_images(message):
        return ""
    return "shown" if shows_images(context, message) else "blocked"


@register.simple_tag(takes_context=True)
def message_html(context: template.Context, message: Message) -> SafeString:
    """:func:`message_body`, with the remote images the reader asked for (the
    ``show_images`` message id of the panel's context, or a sender always shown).
    Showing any marks the request (``shows_remote_images``): the record page then
    lets its policy load https images."""

    def show() -> bool:
        if not shows_images(context, message):
            return False
        request = context.get("request")
        if request is not None:
            request.shows_remote_images = True
        return True

    return render_body(message, show_images=show)


@register.filter
def message_body(message: Message, show_images: object = None) -> SafeString:
    """The body, sanitized again (rows written around ``post_message`` exist), with
    cid: images pointing at our files, and remote images blocked unless
    ``show_images`` is this message's id (the reader clicked *Show images*)."""
    return render_body(message, show_images=lambda: str(show_images) == str(message.pk))


def render_body(message: Message, *, show_images: Callable[[], bool]) -> SafeString:
    """:func:`message_body`; ``show_images`` is asked only when the body has a
    remote image."""
    html = sanitize_html(message.body_html)
    if has_remote_image(html) and not show_images():
        html = block_remote_images(html)
    if "cid:" in html:
        by_cid = {a.content_id: a for a in message.attachments.all() if a.content_id}

        def swap(match: re.Match) -> str:
            attachment = by_cid.get(match.group(1))
            if attachment is None or not is_previewable(attachment):
                return 'src=""'
            return f'src="{attachment_url(attachment)}"'

        html = _CID_SRC.sub(swap, html)
    if message.kind != Message.Kind.NOTIFICATION:
        html = highlight_mentions(html)  # escapes what it adds
    return mark_safe(html)  # noqa: S308 - sanitized just above


@register.filter
def clean_html(html: str) -> SafeString:
    """Any stored HTML fragment, sanitized before it is shown."""
    return mark_safe(sanitize_html(html or ""))  # noqa: S308 - sanitized here


@register.filter
def clean_html_without_remote(html: str) -> SafeString:
    """Stored HTML, sanitized, its remote images replaced by placeholders."""
    return mark_safe(block_remote_images(sanitize_html(html or "")))  # noqa: S308


@register.filter
def reply_excerpt(message: Message) -> str:
    """The first words of ``message`` for a reply's "In reply to" line: its own text
    (quoted history left out), else its subject."""
    lines = []
    for line in message.body_text[:2000].splitlines():
        if line.lstrip().startswith(">") or _QUOTE_INTRO.match(line):
            break
        lines.append(line)
    text = " ".join(" ".join(lines).split())
    if text:
        return Truncator(text).words(REPLY_EXCERPT_WORDS, truncate="…")
    return message.subject or message.get_kind_display()
