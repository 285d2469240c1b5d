"""What one copy of a mail has of its own beyond its To and Message-ID: header
fields (a mailing's ``List-Unsubscribe``) and values put in place of placeholders
in its body (the footer's unsubscribe link).

``queue_mail_copies`` builds a mail once and splices each copy's To and
Message-ID into it; :meth:`Personalizer.apply` then adds the copy's own header
fields, written by :mod:`mailservers.headers` (printable ASCII only: no line
break can be injected), and re-encodes only the body parts holding a
placeholder, in their own transfer encoding (7bit, quoted-printable or base64),
from a layout read once per distinct body (quoted-printable parts: only
the lines holding a placeholder, the others encoded once in the layout). Values are ASCII without line breaks
(URLs): they never change a part's encoding. Pure: no ORM, no settings.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import quopri
from collections.abc import Sequence
from dataclasses import dataclass

from mailservers import headers

logger = logging.getLogger(__name__)

# Fields a copy may not add (the built mail has them already, or they steer MIME).
_RESERVED = {
    "from", "to", "cc", "bcc", "reply-to", "subject", "message-id", "date",
    "mime-version", "content-type", "content-transfer-encoding", "sender",
    "return-path", "x-knowlix-message-id", "in-reply-to", "references",
}  # fmt: skip


@dataclass(frozen=True)
class CopyLines:
    """A copy's own header fields ``(name, value)`` and body ``(placeholder,
    value)`` pairs; every value printable ASCII."""

    headers: Sequence[tuple[str, str]] = ()
    values: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        for name, value in self.headers:
            if name.lower() in _RESERVED or not headers.is_header_name(name):
                raise ValueError(f"{name!r} cannot be set on a copy")
            if not headers.is_plain(value, word_max=900):
                raise ValueError(f"{value!r} cannot be written in {name}")
        for key, value in self.values:
            if not (key and key.isascii() and key.isprintable()):
                raise ValueError(f"{key!r} is not a placeholder")
            if not (value.isascii() and value.isprintable()):
                raise ValueError(f"{value!r} cannot replace {key!r}")


@dataclass(frozen=True)
class _Part:
    """A body part holding a placeholder: where its encoded content is in the
    body, its transfer encoding and its decoded bytes."""

    start: int
    end: int
    encoding: str
    content: bytes
    # Quoted-printable is encoded line by line: the lines without a placeholder
    # encoded once (bytes), those with one kept to encode per copy (str marks
    # them: their decoded bytes as latin-1). Empty: encode the whole part.
    pieces: tuple[bytes | str, ...] = ()
    keys: frozenset[bytes] = frozenset()  # the placeholders the pieces were cut for


class Personalizer:
    """Applies :class:`CopyLines` to the copies of one mail (keeps the layout of
    the last few bodies it saw: the copies of a fan-out share one body)."""

    def __init__(self) -> None:
        self._layouts: dict[bytes, list[_Part] | None] = {}
        # Per header name, its last value and line (the names are the few
        # CopyLines may add; a copy's own value replaces the last one).
        self._last_lines: dict[str, tuple[str, bytes]] = {}

    def apply(self, raw: bytes, lines: CopyLines | None) -> bytes:
        if lines is None or not (lines.headers or lines.values):
            return raw
        head, sep, body = raw.partition(b"\r\n\r\n")
        if lines.values:
            body = self._substitute(raw, body, lines.values)
        if lines.headers:
            head += b"".join(self._header_line(n, v) for n, v in lines.headers)
        return head + sep + body

    def _header_line(self, name: str, value: str) -> bytes:
        """``\r\n`` and the field as :class:`headers.HeaderBlock` writes it (the
        same field as the last copy's, such as ``List-Unsubscribe-Post``: written
        once)."""
        last = self._last_lines.get(name)
        if last is not None and last[0] == value:
            return last[1]
        block = headers.HeaderBlock()
        block.token(name, value)
        line = b"\r\n" + block.as_bytes().rstrip(b"\r\n")
        self._last_lines[name] = (value, line)
        return line

    def _layout(self, raw: bytes, body: bytes, keys: list[bytes]) -> list[_Part]:
        if body in self._layouts:
            return self._layouts[body] or []
        if len(self._layouts) >= 4:  # a copy built in full has a body of its own
            self._layouts.clear()
        parts = []
        for part in email.message_from_bytes(raw, policy=email.policy.compat32).walk():
            if part.is_multipart() or part.get_content_disposition() is not None:
                continue  # attachments and inline images are the sender's bytes
            content = part.get_payload(decode=True)
            if not isinstance(content, bytes) or not any(k in content for k in keys):
                continue
            payload = part.get_payload(decode=False)
            if not isinstance(payload, str):
                continue
            encoded = payload.encode("ascii", "surrogateescape")
            start = body.find(encoded)
            if start < 0 or body.find(encoded, start + 1) >= 0:
                logger.warning("a personalized part was not found once in its mail")
                continue
            cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
            pieces = _qp_pieces(content, keys) if cte == "quoted-printable" else ()
            parts.append(
                _Part(
                    start, start + len(encoded), cte, content, pieces, frozenset(keys)
                )
            )
        self._layouts[body] = parts
        return parts

    def _substitute(
        self, raw: bytes, body: bytes, values: Sequence[tuple[str, str]]
    ) -> bytes:
        pairs = [(k.encode("ascii"), v.encode("ascii")) for k, v in values]
        parts = self._layout(raw, body, [k for k, _v in pairs])
        if not parts:  # nothing decodable held one: replace in the bytes as they are
            for key, value in pairs:
                body = body.replace(key, value)
            return body
        out, at = [], 0
        for part in parts:
            if part.pieces and all(key in part.keys for key, _v in pairs):
                out += [body[at : part.start], _qp_splice(part.pieces, pairs)]
                at = part.end
                continue
            content = part.content
            for key, value in pairs:
                content = content.replace(key, value)
            out += [body[at : part.start], _encode(content, part.encoding)]
            at = part.end
        out.append(body[at:])
        return b"".join(out)


def _qp_pieces(content: bytes, keys: list[bytes]) -> tuple[bytes | str, ...]:
    """A quoted-printable part's lines, those without a placeholder encoded once
    (quoted-printable encodes each line alone); empty when encoding them apart
    does not give the bytes of the whole (then each copy encodes it all)."""
    lines = content.replace(b"\r\n", b"\n").splitlines(keepends=True)
    if any(line.endswith(b"\r") for line in lines):
        return ()  # a lone CR: not a line end for the encoder
    pieces: list[bytes | str] = []
    for line in lines:
        if any(k in line for k in keys):
            pieces.append(line.decode("latin-1"))
        else:
            pieces.append(_encode(line, "quoted-printable"))
    check = [
        p if isinstance(p, bytes) else _encode(p.encode("latin-1"), "quoted-printable")
        for p in pieces
    ]
    if b"".join(check) != _encode(content, "quoted-printable"):
        return ()
    # The lines encoded once joined: a copy goes through a few pieces, not
    # through every line of the part.
    joined: list[bytes | str] = []
    for piece in pieces:
        if joined and isinstance(piece, bytes) and isinstance(joined[-1], bytes):
            joined[-1] += piece
        else:
            joined.append(piece)
    return tuple(joined)


def _qp_splice(
    pieces: tuple[bytes | str, ...], pairs: list[tuple[bytes, bytes]]
) -> bytes:
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            line = piece.encode("latin-1")
            for key, value in pairs:
                line = line.replace(key, value)
            piece = _encode(line, "quoted-printable")
        out.append(piece)
    return b"".join(out)


def _encode(content: bytes, encoding: str) -> bytes:
    """``content`` in a part's transfer encoding, CRLF line ends, ending as the
    standard library ends a part's payload."""
    if encoding == "base64":
        encoded = base64.encodebytes(content)  # lines of 76, each ending in LF
        return encoded.replace(b"\n", b"\r\n")
    if encoding == "quoted-printable":
        lf = content.replace(b"\r\n", b"\n")
        return quopri.encodestring(lf).replace(b"\n", b"\r\n")
    return content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
