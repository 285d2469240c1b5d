"""Build an outgoing mail's RFC 5322 bytes, once (RFC 2045-2047, 2231, 2392, 3834).

Text and HTML alternatives, inline ``cid:`` images related to the HTML, attachments
whose non-ASCII names use RFC 2231, our ``Message-ID`` (repeated in
``X-Knowlix-Message-Id``, which survives relays that rewrite Message-ID, so routing
still knows our own mail), the thread's ``In-Reply-To`` and ``References``,
``Reply-To`` and ``Auto-Submitted``. Invariant: every top-level header is written
by :mod:`mailservers.headers` (never by the standard library, which decodes and
re-folds encoded words unsafely on some releases), and MIME part parameters get
only values that :func:`mailservers.headers.clean_text` cleaned, so no value can
carry a line break in any encoding. The output is 7-bit (no 8BITMIME/SMTPUTF8),
except the headers of a mail built with ``utf8`` for a recipient whose local part is
not ASCII (RFC 6532; sent only with SMTPUTF8, see ``mailservers.addresses``).
Pure: no ORM, no settings.
"""

from __future__ import annotations

import email.policy
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import cast

from django.utils import timezone

from mailservers import headers
from mailservers.headers import InvalidAddress, Mailbox

POLICY = email.policy.SMTP.clone(cte_type="7bit")
# Headers we set ourselves; ``extra_headers`` may not override them.
_RESERVED = {
    "from", "to", "cc", "bcc", "reply-to", "subject", "message-id", "in-reply-to",
    "references", "date", "mime-version", "content-type", "content-transfer-encoding",
    "auto-submitted", "x-knowlix-message-id", "x-auto-response-suppress",
    "content-disposition", "content-id", "sender", "return-path",
}  # fmt: skip
# What the MIME body adds to the top-level header block (written by the stdlib from
# our fixed values only).
_BODY_HEADERS = {"mime-version", "content-type", "content-transfer-encoding"}
_MIME_TOKEN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")  # RFC 6838 names
MESSAGE_ID = headers.MESSAGE_ID  # what may be written as a Message-ID


@dataclass(frozen=True)
class MailPart:
    """A file to attach; with ``content_id`` it is an inline image of the HTML body."""

    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"
    content_id: str = ""

    @property
    def size(self) -> int:
        return len(self.content)


def clean_header(value: str) -> str:
    """The value as one line of clean text (see :func:`headers.clean_text`)."""
    return headers.clean_text(value, limit=998)


def make_address(name: str, addr_spec: str) -> Address:
    """A checked ``Address``; raises :class:`InvalidAddress` for anything odd."""
    mailbox = headers.make_mailbox(name, addr_spec)
    return Address(
        display_name=mailbox.name, username=mailbox.local, domain=mailbox.domain
    )


def parse_address(value: str | tuple[str, str]) -> Address:
    """``"Name <a@b>"``, ``"a@b"`` or ``(name, address)`` as a checked ``Address``."""
    if isinstance(value, tuple):
        return make_address(*value)
    pairs = getaddresses([value.replace("\r", " ").replace("\n", " ")])
    if len(pairs) != 1 or not pairs[0][1]:
        raise InvalidAddress(f"{value!r} is not a single email address")
    return make_address(*pairs[0])


def _mailbox(value: str | tuple[str, str] | Address, *, utf8: bool = False) -> Mailbox:
    if isinstance(value, tuple) and utf8:  # no Address: it refuses a UTF-8 local part
        return headers.make_mailbox(*value, utf8=True)
    if isinstance(value, Address):
        return headers.make_mailbox(value.display_name, value.addr_spec)
    address = parse_address(value)
    return headers.make_mailbox(address.display_name, address.addr_spec)


def make_message_id(domain: str) -> str:
    """A new unique ``<knowlix.random@domain>`` (every Message-ID we mint; 120
    random bits, short enough that its header is rarely folded)."""
    domain = clean_header(domain).strip("<>@ ").replace(" ", "") or "localhost"
    return f"<knowlix.{secrets.token_urlsafe(15)}@{domain}>"


def _msgid(value: str) -> str:
    return headers.check_message_id(clean_header(value))


def build_message(
    *,
    from_addr: str | tuple[str, str],
    to: Sequence[str | tuple[str, str]] = (),
    cc: Sequence[str | tuple[str, str]] = (),
    reply_to: Sequence[str | tuple[str, str]] = (),
    subject: str,
    text: str,
    html: str = "",
    message_id: str,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    auto_submitted: bool = False,
    attachments: Sequence[MailPart] = (),
    extra_headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
    utf8: bool = False,
) -> bytes:
    """The mail as CRLF-terminated 7-bit bytes, ready for SMTP DATA.

    Bcc recipients never appear here: they only go in the SMTP envelope. ``utf8``:
    To/Cc may hold a non-ASCII local part, written in UTF-8 (RFC 6532).
    """
    head = headers.HeaderBlock(utf8=utf8)
    head.mailboxes("From", [_mailbox(from_addr)])
    for name, values in (("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if values:
            head.mailboxes(name, [_mailbox(v, utf8=utf8) for v in values])
    head.text("Subject", subject)
    head.token("Date", format_datetime(date or timezone.now()))
    message_id = _msgid(message_id)
    head.message_ids("Message-ID", [message_id])
    # Relays (Exchange, some ESPs) replace Message-ID; routing reads this one back.
    head.message_ids("X-Knowlix-Message-Id", [message_id])
    if in_reply_to:
        head.message_ids("In-Reply-To", [_msgid(in_reply_to)])
    refs = list(dict.fromkeys(_msgid(r) for r in references if r))
    if refs:
        head.message_ids("References", refs)
    if auto_submitted:
        head.token("Auto-Submitted", "auto-generated")  # RFC 3834: no auto-replies
        head.token("X-Auto-Response-Suppress", "All")  # Exchange's equivalent
    for name, value in (extra_headers or {}).items():
        if name.lower() in _RESERVED or not headers.is_header_name(name):
            raise ValueError(f"{name!r} cannot be set as an extra header")
        head.text(name, value)

    msg = EmailMessage(policy=POLICY)
    msg.set_content(text or "", subtype="plain", charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
        # add_alternative() made msg multipart: its payload is the list of parts.
        html_part = cast("list[EmailMessage]", msg.get_payload())[1]
        for part in attachments:
            if part.content_id:
                maintype, subtype = _split_type(part.mimetype)
                html_part.add_related(
                    part.content,
                    maintype,
                    subtype,
                    cid=headers.clean_content_id(part.content_id),
                    filename=headers.clean_filename(part.filename),
                    disposition="inline",
                )
    for part in attachments:
        if part.content_id and html:
            continue
        maintype, subtype = _split_type(part.mimetype)
        msg.add_attachment(
            part.content,
            maintype,
            subtype,
            filename=headers.clean_filename(part.filename),
        )
    body = msg.as_bytes(policy=POLICY)
    raw = head.as_bytes() + body
    # Defence in depth: the block holds exactly the fields written above.
    written = headers.written_header_names(raw)
    if (
        written[: len(head.names)] != head.names
        or not set(written[len(head.names) :]) <= _BODY_HEADERS
    ):
        raise ValueError(f"unexpected header fields in a built mail: {written}")
    return raw


def _split_type(mimetype: str) -> tuple[str, str]:
    maintype, _, subtype = clean_header(mimetype).lower().partition("/")
    if (
        not _MIME_TOKEN.match(maintype)
        or not _MIME_TOKEN.match(subtype)
        or maintype in ("multipart", "message")
    ):
        return "application", "octet-stream"
    return maintype, subtype


def estimated_size(*, text: str, html: str, attachments: Sequence[MailPart]) -> int:
    """A lower bound of the built size (base64 adds a third): a cheap early refusal."""
    body = len(text.encode()) + len(html.encode())
    return body + sum(part.size * 4 // 3 for part in attachments)
