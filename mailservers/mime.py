"""Build an outgoing mail's RFC 5322 bytes, once (RFC 2045-2047, 2231, 2392, 3834).

Text and HTML alternatives, inline ``cid:`` images related to the HTML, attachments
whose non-ASCII names use RFC 2231, our ``Message-ID`` (repeated in
``X-Knowlix-Message-Id``, which survives relays that rewrite Message-ID, so routing
still knows our own mail), the thread's ``In-Reply-To`` and ``References``,
``Reply-To`` and ``Auto-Submitted``. Invariant: every header value goes
through :func:`clean_header`, so no value can carry a line break (header injection is
impossible by construction), and the output is 7-bit (no 8BITMIME/SMTPUTF8 needed).
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

# CR, LF, NUL and every other character Python's str.splitlines() breaks on.
_LINE_BREAKS = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII, no colon
_MSGID = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")
POLICY = email.policy.SMTP.clone(cte_type="7bit")
# A copy to a non-ASCII local part (RFC 6531/6532): UTF-8 headers, 7-bit bodies.
POLICY_UTF8 = email.policy.SMTPUTF8.clone(cte_type="7bit")
# Headers we set ourselves; ``extra_headers`` may not override them.
_RESERVED = {
    "from", "to", "cc", "bcc", "reply-to", "subject", "message-id", "in-reply-to",
    "references", "date", "mime-version", "content-type", "content-transfer-encoding",
    "auto-submitted", "x-knowlix-message-id",
}  # fmt: skip


class InvalidAddress(ValueError):
    """An address that cannot be written into a header."""


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
    """The value on one line: any line break (CR, LF, U+2028, ...) becomes a space."""
    return _LINE_BREAKS.sub(" ", str(value)).strip()


def make_address(name: str, addr_spec: str) -> Address:
    """A checked ``Address``; raises :class:`InvalidAddress` for anything odd."""
    addr_spec = clean_header(addr_spec)
    if not addr_spec or " " in addr_spec or "@" not in addr_spec:
        raise InvalidAddress(f"{addr_spec!r} is not an email address")
    local, _at, domain = addr_spec.rpartition("@")
    try:
        if not local.isascii():  # RFC 6532: only in a message built with utf8=True
            return Address(
                display_name=clean_header(name), username=local, domain=domain
            )
        return Address(display_name=clean_header(name), addr_spec=addr_spec)
    except (ValueError, IndexError) as exc:
        raise InvalidAddress(f"{addr_spec!r} is not an email address") from exc


def parse_address(value: str | tuple[str, str]) -> Address:
    """``"Name <a@b>"``, ``"a@b"`` or ``(name, address)`` as a checked ``Address``."""
    if isinstance(value, tuple):
        return make_address(*value)
    pairs = getaddresses([clean_header(value)])
    if len(pairs) != 1 or not pairs[0][1]:
        raise InvalidAddress(f"{value!r} is not a single email address")
    return make_address(*pairs[0])


def make_message_id(domain: str) -> str:
    """A new unique ``<knowlix.random@domain>`` (every Message-ID we mint; 120
    random bits, short enough that its header is rarely folded)."""
    domain = clean_header(domain).strip("<>@ ") or "localhost"
    return f"<knowlix.{secrets.token_urlsafe(15)}@{domain}>"


def _msgid(value: str) -> str:
    value = clean_header(value)
    if not _MSGID.match(value):
        raise ValueError(f"{value!r} is not a Message-ID")
    return value


def _set_addresses(msg: EmailMessage, name: str, values: Sequence) -> None:
    if values:
        msg[name] = [parse_address(v) for v in values]


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
    headers in UTF-8 (RFC 6532), for a recipient whose local part is not ASCII;
    such a mail needs SMTPUTF8 (``mailservers.addresses``).
    """
    policy = POLICY_UTF8 if utf8 else POLICY
    msg = EmailMessage(policy=policy)
    msg["From"] = parse_address(from_addr)
    _set_addresses(msg, "To", to)
    _set_addresses(msg, "Cc", cc)
    _set_addresses(msg, "Reply-To", reply_to)
    msg["Subject"] = clean_header(subject)
    msg["Date"] = format_datetime(date or timezone.now())
    message_id = _msgid(message_id)
    msg["Message-ID"] = message_id
    # Relays (Exchange, some ESPs) replace Message-ID; routing reads this one back.
    msg["X-Knowlix-Message-Id"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = _msgid(in_reply_to)
    refs = [_msgid(r) for r in references if r]
    if refs:
        msg["References"] = " ".join(dict.fromkeys(refs))
    if auto_submitted:
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange's equivalent
    for name, value in (extra_headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() in _RESERVED:
            raise ValueError(f"{name!r} cannot be set as an extra header")
        msg[name] = clean_header(value)

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
                    cid=f"<{clean_header(part.content_id).strip('<>')}>",
                    filename=clean_header(part.filename) or None,
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
            filename=clean_header(part.filename) or "attachment",
        )
    return msg.as_bytes(policy=policy)


def _split_type(mimetype: str) -> tuple[str, str]:
    maintype, _, subtype = clean_header(mimetype).lower().partition("/")
    if not maintype or not subtype or maintype in ("multipart", "message"):
        return "application", "octet-stream"
    return maintype, subtype


def estimated_size(*, text: str, html: str, attachments: Sequence[MailPart]) -> int:
    """A lower bound of the built size (base64 adds a third): a cheap early refusal."""
    body = len(text.encode()) + len(html.encode())
    return body + sum(part.size * 4 // 3 for part in attachments)
