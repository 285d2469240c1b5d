"""Parse raw RFC 5322 bytes into a ``ParsedMessage`` (pure: no ORM, no network).

Parsing happens once per message (it costs about a millisecond) with the standard
library's modern policy, and it is tolerant: wrong, unknown or missing charsets, raw
8-bit headers, malformed addresses and broken MIME degrade to best-effort text. Only
bytes that are not a message at all (or MIME nested absurdly deep) raise ParseError.
"""

from __future__ import annotations

import email
import email.feedparser
import email.policy
import functools
import hashlib
import re
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, cast

from routing.bodies import ParsedAttachment, walk_body
from routing.errors import ParseError
from routing.reports import (
    AuthVerdict,
    BounceInfo,
    detect_auto_submitted,
    detect_bounce,
    parse_authentication_results,
)
from routing.text import clean_text, decode_header_text, is_plain_text

MAX_REFERENCES = 32
MSGID_RE = re.compile(r"<[^<>\s]{1,900}>")
# A Message-ID as almost every mailer writes it, which decoding leaves alone:
# ``normalize_message_id`` of the decoded value is the bracketed id itself.
_ATEXT = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]"
_PLAIN_MSGID_RE = re.compile(rf"\s*(<{_ATEXT}{{1,450}}@{_ATEXT}{{1,450}}>)\s*")
SUBJECT_TAG_RE = re.compile(r"\[([A-Z]{2,5})-(\d{1,12})\]")
_QUOTED_MSGID_RE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)
LOOP_TAG_RE = re.compile(r"KLOOP-[0-9a-f]{16}")
RECIPIENT_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "To",
    "Cc",
    "Resent-To",
    "Resent-Cc",
    "Envelope-To",
    "X-Envelope-To",
)


# Parsed header objects are immutable, so one parse of a given (name, value) serves
# every later read: the standard library parses a header again on each access, and
# the parser plus the MIME walk read Content-Type about 25 times per message (most
# MIME headers also repeat from one message to the next). Small: ~13 KB an entry.
# (What ``email.policy.default.header_fetch_parse`` does, its header class looked
# up once per name: the registry builds a new class on every lookup, ~30 µs.)
_LINESEP = re.compile(r"\n|\r")


@functools.lru_cache(maxsize=128)
def _fetch_parsed_header(name: str, value: str) -> BaseHeader:
    return _header_class(name.lower())(name, "".join(_LINESEP.split(value)))


if TYPE_CHECKING:  # the policy makes EmailMessage objects (typeshed needs telling)
    _EmailPolicy = email.policy.EmailPolicy[EmailMessage]
else:
    _EmailPolicy = email.policy.EmailPolicy


class _ReadOncePolicy(_EmailPolicy):
    """The modern policy (``email.policy.default``), parsing each header value once."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        if hasattr(value, "name"):  # already a header object
            return value
        try:
            return _fetch_parsed_header(name, value)
        except Exception:  # noqa: BLE001 - the modern parser crashed on hostile input
            # e.g. an RFC 2231 parameter in UTF-7 decoding to a lone surrogate: the
            # value is read the old way, so one header never stops a whole poll.
            return str(email.policy.compat32.header_fetch_parse(name, value))


PARSE_POLICY = _ReadOncePolicy()

# The feed parser compiles a regular expression for each multipart's boundary; a
# boundary is unique to its message, so that is a compile per message (~160 µs,
# re's cache never hits). Its pattern is the boundary line's separator, a literal,
# then a tail that is the same for all: a line matches it when it starts with the
# separator and the tail matches from there (the groups the parser reads, "end" and
# "linesep", are the tail's). Any other pattern is compiled as before.
_BOUNDARY_HEAD = "(?P<sep>"
_BOUNDARY_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR = re.compile(_BOUNDARY_TAIL[1:])
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class _BoundaryLine:
    """A compiled boundary pattern, as far as the feed parser uses it."""

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _AFTER_SEPARATOR.match(line, len(self.separator))


class _FeedParserRe:
    """``re`` as the feed parser's ``_parsegen`` sees it (see above)."""

    def __getattr__(self, name: str) -> object:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: str, flags: int = 0) -> re.Pattern[str] | _BoundaryLine:
        if (
            not flags
            and isinstance(pattern, str)
            and pattern.startswith(_BOUNDARY_HEAD)
            and pattern.endswith(_BOUNDARY_TAIL)
        ):
            escaped = pattern[len(_BOUNDARY_HEAD) : -len(_BOUNDARY_TAIL)]
            separator = _ESCAPED.sub(r"\1", escaped)
            if re.escape(separator) == escaped:  # exactly this literal
                return _BoundaryLine(separator)
        return re.compile(pattern, flags)


_parsegen = email.feedparser.FeedParser._parsegen  # type: ignore[attr-defined]


class _FeedParser(email.feedparser.FeedParser):
    """The standard library's feed parser, its own ``_parsegen`` code run with
    ``_FeedParserRe`` as its ``re``."""

    _parsegen = types.FunctionType(
        _parsegen.__code__,
        {**vars(email.feedparser), "re": _FeedParserRe()},
        _parsegen.__name__,
        _parsegen.__defaults__,
        _parsegen.__closure__,
    )


def message_from_bytes(raw: bytes) -> EmailMessage:
    """``email.message_from_bytes(raw, policy=PARSE_POLICY)``, as it feeds its
    parser (the bytes as ASCII with surrogate escapes, 8192 characters at a
    time)."""
    parser = _FeedParser(policy=PARSE_POLICY)
    text = raw.decode("ascii", "surrogateescape")
    for start in range(0, len(text), 8192):
        parser.feed(text[start : start + 8192])
    return cast(EmailMessage, parser.close())


@dataclass
class ParsedMessage:
    sha256: str
    message_id: str  # "<...>"; generated from the sha256 when missing
    has_message_id: bool
    knowlix_message_id: str
    date: datetime | None
    subject: str
    from_name: str
    from_address: str  # normalized; "" when no usable address
    reply_to: str
    return_path: str | None  # None: no header; "": null reverse path "<>"
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    # every address the message was delivered to, in lookup order, normalized
    recipients: list[str] = field(default_factory=list)
    recipients_cased: list[str] = field(default_factory=list)  # reply tokens
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # last 32, oldest first
    body_text: str = ""
    body_html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_submitted: str = ""  # why it is automatic, "" for a person's mail
    bounce: BounceInfo = field(default_factory=lambda: BounceInfo(detected=False))
    auth_verdicts: list[AuthVerdict] = field(default_factory=list)
    has_dkim_signature: bool = False
    # exactly one From field holding one address: the only From that can be proven
    # (a DKIM pass covers the last From field, Knowlix reads the first)
    has_single_from: bool = True
    subject_tags: list[tuple[str, int]] = field(default_factory=list)
    loop_tags: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """In-Reply-To first, then References from the most recent back."""
        seen: dict[str, None] = {}
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            seen.setdefault(mid, None)
        return list(seen)

    @property
    def is_auto_submitted(self) -> bool:
        return bool(self.auto_submitted)


def normalize_address(address: str) -> str:
    """Lower-case an address and strip brackets and blanks; "" if it has no @."""
    return clean_address(address).lower()


def clean_address(address: str) -> str:
    """Strip brackets and blanks, keep the case; "" if it is not local@domain."""
    address = clean_text(address).strip().strip("<>").strip()
    if address.count("@") < 1 or address.startswith("@") or address.endswith("@"):
        return ""
    return address


def normalize_message_id(value: str) -> str:
    """The first ``<id>`` of a header value, or the bare value wrapped in brackets."""
    value = clean_text(value).strip()
    match = MSGID_RE.search(value)
    if match:
        return match.group(0)
    bare = value.split()[0] if value.split() else ""
    return f"<{bare[:900]}>" if bare else ""


def extract_message_ids(value: str) -> list[str]:
    """Every ``<id>`` in a References/In-Reply-To value (bare ids tolerated)."""
    value = clean_text(value)
    ids = MSGID_RE.findall(value)
    if not ids and value.strip():
        ids = [f"<{token}>" for token in value.split() if "@" in token]
    return ids


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw bytes; raise ParseError only if they are not a message at all."""
    if not raw or not raw.strip():
        raise ParseError("The message is empty.")
    try:
        msg = message_from_bytes(raw)
    except RecursionError as exc:
        raise ParseError("The MIME structure is nested too deeply.") from exc
    if not msg.keys():
        raise ParseError("The data has no mail headers.")
    sha256 = hashlib.sha256(raw).hexdigest()
    parsed = _parse_headers(msg, sha256)
    parsed.defects = [type(d).__name__ for d in msg.defects][:20]
    text, html, attachments, truncated = walk_body(msg)
    parsed.body_text, parsed.body_html, parsed.attachments = text, html, attachments
    if truncated:
        parsed.defects.append("TooManyParts")
    parsed.bounce = detect_bounce(msg, from_address=parsed.from_address)
    if parsed.bounce.detected and not parsed.bounce.original_message_id:
        match = _QUOTED_MSGID_RE.search(parsed.body_text)  # a quoted original
        parsed.bounce.original_message_id = match.group(1) if match else ""
    parsed.auto_submitted = detect_auto_submitted(
        msg, return_path=parsed.return_path, is_bounce=parsed.bounce.detected
    )
    return parsed


class _RawHeaders:
    """A message's raw header values by lower-cased name, indexed once (a message
    has ~20 headers and parsing reads ~25 names)."""

    def __init__(self, msg: EmailMessage) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in msg.raw_items():
            self._values.setdefault(key.lower(), []).append(value)

    def values(self, name: str) -> list[str]:
        return self._values.get(name.lower(), [])

    def text(self, name: str) -> str:
        """The first value, decoded (RFC 2047, raw 8-bit), or ""."""
        values = self.values(name)
        return decode_header_text(name, values[0]) if values else ""

    def message_id(self, name: str) -> str:
        """``normalize_message_id`` of the first value, decoded ("" if none)."""
        values = self.values(name)
        if not values:
            return ""
        plain = _PLAIN_MSGID_RE.fullmatch(values[0])
        if plain is not None and "=?" not in values[0]:
            return plain.group(1)  # nothing to decode (the usual case)
        text = self.text(name)
        return normalize_message_id(text) if text else ""

    def date(self) -> datetime | None:
        """The Date field's moment (None if none or unreadable)."""
        values = self.values("Date")
        if not values:
            return None
        value = "".join(values[0].splitlines())
        if is_plain_text(value):  # the decoded value would parse the same
            return _parse_date(clean_text(value))
        return _parse_date(self.text("Date"))

    def addresses(self, name: str, *, keep_case: bool = False) -> list[tuple[str, str]]:
        """(display name, normalized address) pairs; malformed entries are skipped."""
        found: list[tuple[str, str]] = []
        for raw_value in self.values(name):
            if len(raw_value) <= _CACHED_VALUE_CHARS:
                pairs = _cached_address_pairs(name, raw_value)
            else:
                pairs = _address_pairs(name, raw_value)
            for name_part, addr in pairs:
                address = clean_address(addr) if keep_case else normalize_address(addr)
                if address:
                    found.append((clean_text(name_part).strip(), address))
        return found


# The standard library builds a new header class on every lookup of a name.
# (typeshed calls the policy's header_factory a plain callable: it is a registry.)
_header_class = functools.lru_cache(maxsize=64)(
    cast(HeaderRegistry, email.policy.default.header_factory).__getitem__
)


def _address_pairs(name: str, raw_value: str) -> tuple[tuple[str, str], ...]:
    """The (display name, addr-spec) pairs of one address header value."""
    pairs: list[tuple[str, str]] = []
    try:
        header = _header_class(name.lower())(name, raw_value)
        if isinstance(header, AddressHeader):
            pairs = [(a.display_name, a.addr_spec) for a in header.addresses]
        else:  # no address header to the registry (Delivered-To, Envelope-To...)
            pairs = getaddresses([raw_value])
    except Exception:  # the modern parser gave up: fall back to the old one
        pairs = getaddresses([raw_value])
    if not any(normalize_address(a) for _, a in pairs):
        pairs = getaddresses([clean_text(raw_value)])
    return tuple(pairs)


# Address values repeat from one message to the next (our own addresses in To and
# Delivered-To, a customer's From): parsed once each. Bounded: short values only.
_CACHED_VALUE_CHARS = 1000
_cached_address_pairs = functools.lru_cache(maxsize=1024)(_address_pairs)


def _parse_headers(msg: EmailMessage, sha256: str) -> ParsedMessage:
    headers = _RawHeaders(msg)
    message_id = headers.message_id("Message-ID")
    from_fields = headers.addresses("From")
    senders = from_fields or headers.addresses("Sender")
    from_name, from_address = senders[0] if senders else ("", "")
    if not from_name and not from_address:
        from_name = headers.text("From")[:200]
    return_path = None
    if headers.values("Return-Path"):
        rp = headers.text("Return-Path").strip()
        return_path = "" if rp in ("<>", "") else normalize_address(rp)
        if not from_address and return_path:
            from_address = return_path
    reply_to = headers.addresses("Reply-To")
    subject = " ".join(headers.text("Subject").split())
    in_reply_to = extract_message_ids(headers.text("In-Reply-To"))
    references = extract_message_ids(" ".join(headers.values("References")))
    cased: dict[str, None] = {}
    for name in RECIPIENT_HEADERS:
        for _, address in headers.addresses(name, keep_case=True):
            cased.setdefault(address, None)
    recipients = {address.lower(): None for address in cased}
    tags = SUBJECT_TAG_RE.findall(subject)
    return ParsedMessage(
        sha256=sha256,
        message_id=message_id or f"<{sha256[:40]}@missing-id.knowlix>",
        has_message_id=bool(message_id),
        knowlix_message_id=headers.message_id("X-Knowlix-Message-Id"),
        date=headers.date(),
        subject=subject[:998],
        from_name=from_name[:200],
        from_address=from_address,
        reply_to=reply_to[0][1] if reply_to else "",
        return_path=return_path,
        to=headers.addresses("To"),
        cc=headers.addresses("Cc"),
        recipients=list(recipients),
        recipients_cased=list(cased),
        in_reply_to=in_reply_to[:MAX_REFERENCES],
        references=references[-MAX_REFERENCES:],
        auth_verdicts=parse_authentication_results(
            [
                decode_header_text("x", v)
                for v in headers.values("Authentication-Results")
            ]
        ),
        has_dkim_signature=bool(headers.values("DKIM-Signature")),
        has_single_from=len(headers.values("From")) == 1 and len(from_fields) == 1,
        subject_tags=[(kind, int(pk)) for kind, pk in tags],
        loop_tags=_loop_tags(headers, subject, in_reply_to + references),
    )


def _parse_date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    if not 1970 <= date.year <= 2200:
        return None
    return date


def _loop_tags(headers: _RawHeaders, subject: str, ids: list[str]) -> list[str]:
    haystack = " ".join([subject, headers.text("X-Knowlix-Loop"), *ids])
    return sorted(set(LOOP_TAG_RE.findall(haystack)))
