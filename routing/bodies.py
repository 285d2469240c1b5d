"""The MIME walk of parsing: choose the body among the parts, collect attachments (pure).

multipart/alternative keeps the last plain text and the last richer part; the first
part of multipart/related is the body and the rest are inline (cid:) parts;
message/rfc822 becomes an .eml attachment; nesting deeper than MAX_DEPTH is kept as
one raw attachment and more than MAX_PARTS parts are left out (and reported). Images
inlined in the HTML as ``data:`` URLs become inline parts referenced by ``cid:``
(the sanitizer keeps no ``data:`` URL). A part whose type has no subtype (a bare
``pdf``) is ``application/octet-stream``, not the text RFC 2045 would default to.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import re
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart

from routing.text import clean_text, decode_header_text, decode_part, safe_filename

MAX_DEPTH = 30
MAX_PARTS = 500
# data: images taken out of the HTML (more stay as they are, and are not shown).
MAX_DATA_IMAGES = 50
DATA_IMAGE_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
}
# How each type's bytes begin: a data: URL whose bytes are not its declared image
# (an SVG with a script, HTML) is not kept as that image.
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "image/bmp": (b"BM",),
}
_DATA_SRC = re.compile(
    r"""(\bsrc\s*=\s*)(?:"data:([^,"]*),([^"]*)"|'data:([^,']*),([^']*)'"""
    r"""|data:([^,"'\s>]*),([^\s>]*))""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""  # without angle brackets, for cid: references
    is_inline: bool = False


def walk_body(msg: EmailMessage) -> tuple[str, str, list[ParsedAttachment], bool]:
    """(text body, HTML body, attachments, whether parts were left out)."""
    walker = _BodyWalker()
    walker.visit(msg, depth=0, in_related=False)
    text = "\n\n".join(t for t in walker.texts if t.strip())
    html = "\n".join(h for h in walker.htmls if h.strip())
    if "data:" in html:
        html = walker.take_data_images(html)
    return text, html, walker.attachments, walker.truncated


class _BodyWalker:
    """Depth-first MIME walk choosing the body and collecting attachments."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.count = 0
        self.truncated = False

    def visit(self, part: MIMEPart, *, depth: int, in_related: bool) -> None:
        self.count += 1
        if self.count > MAX_PARTS:
            self.truncated = True
            return
        ctype = content_type(part)
        if depth > MAX_DEPTH:
            self.add_attachment(part, fallback_name="nested-part")
            return
        if part.is_multipart() and ctype.startswith("multipart/"):
            self.visit_multipart(part, ctype, depth)
        elif ctype.startswith("multipart/"):  # no boundary: read it as text
            self.texts.append(decode_part(part))
        elif ctype == "message/rfc822" or ctype == "message/global":
            self.add_attached_message(part)
        elif ctype in ("message/delivery-status", "text/rfc822-headers"):
            return  # read by detect_bounce, not part of the body
        elif self.is_body_text(part, ctype):
            text = decode_part(part)
            (self.htmls if ctype == "text/html" else self.texts).append(text)
        else:
            self.add_attachment(part, fallback_name="attachment", inline=in_related)

    def visit_multipart(self, part: MIMEPart, ctype: str, depth: int) -> None:
        children = [c for c in part.iter_parts()]
        if ctype == "multipart/alternative":
            self.visit_alternative(children, depth)
        elif ctype == "multipart/related" and children:
            self.visit(children[0], depth=depth + 1, in_related=False)
            for child in children[1:]:
                self.visit(child, depth=depth + 1, in_related=True)
        else:  # mixed, signed, report, digest, unknown: each child in turn
            for child in children:
                self.visit(child, depth=depth + 1, in_related=False)

    def visit_alternative(self, children: list[MIMEPart], depth: int) -> None:
        """Keep the last plain text and the last HTML (or richer) alternative."""
        text = next(
            (c for c in reversed(children) if content_type(c) == "text/plain"),
            None,
        )
        rich = next(
            (c for c in reversed(children) if content_type(c) != "text/plain"),
            None,
        )
        if text is not None:
            self.texts.append(decode_part(text))
        if rich is not None:
            before = len(self.texts)
            self.visit(rich, depth=depth + 1, in_related=False)
            if text is not None:  # a nested alternative must not repeat the text
                del self.texts[before:]

    def is_body_text(self, part: MIMEPart, ctype: str) -> bool:
        if ctype not in ("text/plain", "text/html"):
            return False
        disposition = part.get_content_disposition()
        if disposition == "attachment":
            return False
        return not (disposition == "inline" and _filename(part))

    def add_attached_message(self, part: MIMEPart) -> None:
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if isinstance(inner, EmailMessage):
            try:
                content = inner.as_bytes(policy=email.policy.compat32)
            except Exception:
                content = bytes(inner)
            subject = decode_header_text("Subject", inner.get("Subject", "") or "")
        else:
            content = _payload_bytes(part)
            subject = ""
        name = _filename(part) or safe_filename(f"{subject or 'message'}.eml")
        self.append(ParsedAttachment(name, "message/rfc822", content))

    def take_data_images(self, html: str) -> str:
        """Replace ``data:`` images by ``cid:`` references to inline parts."""
        taken = 0

        def take(match: re.Match[str]) -> str:
            nonlocal taken
            prefix, *values = match.groups()
            meta, data = next(
                (values[i], values[i + 1]) for i in (0, 2, 4) if values[i] is not None
            )
            mimetype, *params = meta.lower().split(";")
            ext = DATA_IMAGE_TYPES.get(mimetype.strip())
            content = _data_url_bytes(data, is_base64="base64" in params)
            if (
                ext is None
                or content is None
                or not _is_image(content, mimetype.strip())
                or taken >= MAX_DATA_IMAGES
            ):
                return match.group(0)
            taken += 1
            number = len(self.attachments) + 1
            content_id = f"data-image-{number}@knowlix"
            self.append(
                ParsedAttachment(
                    filename=f"image-{number}{ext}",
                    content_type=mimetype.strip(),
                    content=content,
                    content_id=content_id,
                    is_inline=True,
                )
            )
            return f'{prefix}"cid:{content_id}"'

        return _DATA_SRC.sub(take, html)

    def add_attachment(
        self, part: MIMEPart, *, fallback_name: str, inline: bool = False
    ) -> None:
        ctype = content_type(part)
        name = _filename(part)
        if not name:
            ext = _EXTENSIONS.get(ctype, ".bin")
            name = f"{fallback_name}-{len(self.attachments) + 1}{ext}"
        content_id = clean_text(str(part.get("Content-ID", "") or "")).strip()
        self.append(
            ParsedAttachment(
                filename=name,
                content_type=ctype,
                content=_payload_bytes(part),
                content_id=content_id.strip("<>")[:300],
                is_inline=inline or part.get_content_disposition() == "inline",
            )
        )

    def append(self, attachment: ParsedAttachment) -> None:
        self.attachments.append(attachment)


_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "application/pgp-signature": ".asc",
    "application/pkcs7-signature": ".p7s",
    "message/rfc822": ".eml",
}


def content_type(part: MIMEPart) -> str:
    """The part's type; a declared type without a subtype (``Content-Type: pdf``)
    is unknown data, where the standard library would default to text/plain."""
    ctype = part.get_content_type()
    if ctype == "text/plain":
        declared = str(part.get("Content-Type", "") or "").split(";")[0].strip()
        if declared and "/" not in declared:
            return "application/octet-stream"
    return ctype


def _is_image(content: bytes, mimetype: str) -> bool:
    if mimetype == "image/webp" and content[8:12] != b"WEBP":
        return False
    return content.startswith(_IMAGE_MAGIC[mimetype])


def _data_url_bytes(data: str, *, is_base64: bool) -> bytes | None:
    """The bytes of a data: URL's payload (None if it is not what it claims)."""
    try:
        if is_base64:
            text = re.sub(r"\s+|%0[aAdD]|%20", "", data)
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return urllib.parse.unquote_to_bytes(data)
    except (binascii.Error, ValueError):
        return None


def _filename(part: MIMEPart) -> str:
    try:
        name = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter
        param = part.get_param("name", header="content-type")
        name = param if isinstance(param, str) else None
    return safe_filename(name) if name else ""


def _payload_bytes(part: MIMEPart) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    try:
        return part.as_bytes(policy=email.policy.compat32)
    except Exception:
        return str(part.get_payload()).encode("utf-8", "replace")
