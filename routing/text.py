"""Text helpers for parsing mail: charsets, encoded words, file names (pure).

Real mail lies about its charset. Every helper here returns clean ``str`` (no lone
surrogates, no NUL, which PostgreSQL refuses) and never raises on bad input: the
declared charset is tried first, then UTF-8, then windows-1252, then Latin-1. A
declared name is resolved as browsers do (the WHATWG Encoding Standard's labels,
through ``webencodings``: ``iso-8859-8-i``, ``windows-874``, ``x-sjis``…), then by
Python's own names (``cp65001``), with a few supersets preferred: one rule for every
charset name, ``mailservers.headers.codec_for`` (encoded words are decoded there).
"""

from __future__ import annotations

import email.policy
import functools
import re
from email.header import decode_header
from email.headerregistry import UnstructuredHeader
from email.message import Message

from mailservers import headers

MAX_HEADER_CHARS = 1_000_000  # no cut: References keep their latest ids
_SURROGATE_RUN = re.compile(r"[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode with the declared charset if it works, else UTF-8, windows-1252, Latin-1.

    A single-byte declaration (ASCII, Latin-1) on bytes that are valid UTF-8 is a
    mislabel: legitimate Latin-1 text almost never forms valid UTF-8 sequences.
    """
    charset = headers.codec_for(declared or "")
    candidates = [charset] if charset else []
    if charset in ("cp1252", "") or charset.startswith("iso8859"):
        candidates.insert(0, "utf-8")
    candidates += ["utf-8", "windows-1252"]
    for candidate in candidates:
        try:
            return data.decode(candidate).replace("\x00", "")
        except (LookupError, UnicodeDecodeError, ValueError):
            if candidate == charset and charset.startswith("utf_"):
                try:  # a declared UTF is right about most of the bytes
                    return data.decode(charset, "replace").replace("\x00", "")
                except (LookupError, ValueError):
                    pass
    return data.decode("latin-1").replace("\x00", "")


def clean_text(value: str) -> str:
    """Turn surrogate-escaped raw bytes back into text and drop NUL characters."""
    if not value:
        return ""
    if max(value) >= "\udc80" or _LONE_SURROGATE.search(value):
        value = _SURROGATE_RUN.sub(_decode_surrogates, value)
        value = _LONE_SURROGATE.sub("\ufffd", value)
    return value.replace("\x00", "")


def _decode_surrogates(match: re.Match[str]) -> str:
    return decode_bytes(match.group(0).encode("utf-8", "surrogateescape"))


def decode_header_text(name: str, raw_value: str) -> str:
    """Decode a raw header value (RFC 2047 words, raw 8-bit) into one line of text."""
    value = clean_text("".join(str(raw_value).splitlines()))
    if is_plain_text(value) and _is_unstructured(name):
        # Nothing to decode: the modern parser would give the value back as it is
        # (checked on random ASCII values, controls and specials included), at
        # ~50 us a header.
        text = value
    else:
        try:
            text = str(email.policy.default.header_factory(name, value))
        except Exception:  # the modern header parser gave up: decode word by word
            text = _legacy_decode(value)
    if "\ufffd" in text and "\ufffd" not in value:  # an unknown charset: do better
        text = _legacy_decode(value)
    # Decoded once; what still hides (double-encoded words, line breaks) is cleaned
    # the way every header we write is, so the text shown is the text we would send.
    return headers.clean_text(clean_text(text), limit=MAX_HEADER_CHARS)


def is_plain_text(value: str) -> bool:
    """ASCII without encoded words: a header value with nothing to decode."""
    return value.isascii() and "=?" not in value


@functools.lru_cache(maxsize=256)
def _is_unstructured(name: str) -> bool:
    """The standard library reads the header as unstructured text (Subject, an
    ``X-`` header, ...), not as addresses, a date or a Message-ID."""
    header_class = email.policy.default.header_factory[name.lower()]  # type: ignore[index]
    return issubclass(header_class, UnstructuredHeader)


def _legacy_decode(value: str) -> str:
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in chunks:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return "".join(out)


def decode_part(part: Message) -> str:
    """The text of a leaf part, decoded with a tolerant charset fallback."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return clean_text(raw if isinstance(raw, str) else "")
    charset = _part_charset(part)
    if not charset and part.get_content_type() == "text/html":
        match = _META_CHARSET.search(payload[:2048])
        charset = match.group(1).decode("ascii") if match else None
    return decode_bytes(payload, charset)


def _part_charset(part: Message) -> str | None:
    try:
        charset = part.get_param("charset")
    except Exception:
        return None
    if isinstance(charset, tuple):  # RFC 2231 form: (charset, language, value)
        charset = charset[2]
    return str(charset) if charset else None


def safe_filename(name: str) -> str:
    """A file name without path, control characters or leading dots (max 200)."""
    name = headers.clean_text(clean_text(str(name)), limit=1000)
    name = re.split(r"[/\\]", name)[-1]
    name = _CONTROL.sub("", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    return name
