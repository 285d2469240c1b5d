"""Header fields written by Knowlix itself, safe by construction (RFC 5322, 2047).

Every header of every mail Knowlix builds is written here. The standard library is
never handed a value it would decode: on releases with CVE-2024-6923 (3.11.7 runs
here) ``EmailMessage`` decodes encoded words when a header is set and may write the
decoded CR/LF back raw. So text is cleaned first (:func:`clean_text`: encoded words
left in it are decoded, every line break and control character becomes a space,
and what could still decode is defused), then written by us: plain printable ASCII
as is, anything else as UTF-8 base64 encoded words of whole characters.
Invariant: no decoded or re-decoded form of a written value holds CR, LF, NUL,
U+2028/2029 or any other line break. Pure: no ORM, no settings.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import quopri
import re
from collections.abc import Iterable
from dataclasses import dataclass

import webencodings

# Every character that ends a line somewhere (str.splitlines, Unicode, C strings),
# the other C0/C1 controls, and DEL. Tabs too: they only ever separate words.
_BREAKS_AND_CONTROLS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]+"
)
_SPACES = re.compile(r"\s+")
# Half of a UTF-16 pair alone (UTF-7 and UTF-16 words decode to them): no mail, file
# or database can hold one.
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
# A lenient encoded word (RFC 2047 2.): what any decoder may take for one.
ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_DEFUSE = "=\u200b?"  # "=?" that no decoder reads as the start of an encoded word
MAX_DECODE_ROUNDS = 8
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII, no colon
# RFC 5322 dot-atom text of a local part (no quoted local parts: nobody needs them)
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")  # fmt: skip
# The same with any other printable character too (RFC 6532 UTF8-non-ascii): only
# in a mail whose headers are UTF-8, sent with SMTPUTF8.
_UTF8_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u00a0-\U0010ffff-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u00a0-\U0010ffff-]+)*$")  # fmt: skip
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MESSAGE_ID = re.compile(
    r"^(?!.*=\?)<[!-;=?-~]{1,900}@[!-;=?-~]{1,250}>$"
)  # no <, >, space
_CONTENT_ID_CHARS = re.compile(r"[^A-Za-z0-9!#$%&'*+/^_`{|}~.@-]")
_PLAIN_WORD_MAX = 76  # a longer word cannot be folded: it is encoded instead
_CHUNK_BYTES = 36  # 48 base64 characters: words of 60, a line of 78 with any name
LINE_MAX = 78


class InvalidAddress(ValueError):
    """An address that cannot be written into a header."""


# --- Cleaning text taken from anywhere (received mail included) ----------------------


# Supersets of what a label names, where mail in the wild uses the larger set.
_SUPERSETS = {"gbk": "gb18030", "gb2312": "gb18030", "euc_kr": "cp949"}
# Python codecs that are no charset of mail: a sender must not get Python's escapes
# ("\\x0d" read as a line break) by naming them.
_NOT_MAIL_CHARSETS = {
    "unicode_escape",
    "raw_unicode_escape",
    "punycode",
    "idna",
    "undefined",
}


@functools.lru_cache(maxsize=256)
def codec_for(declared: str) -> str:
    """The Python codec of a declared charset ("" if none is known)."""
    label = declared.strip().strip("\"'").strip().lower()
    if not label:
        return ""
    try:
        # WHATWG reads "utf-16" as little-endian; Python's codec honours the BOM.
        encoding = None if label in ("utf-16", "utf16") else webencodings.lookup(label)
        name = encoding.codec_info.name if encoding else label
        if name == "replacement":  # WHATWG refuses ISO-2022-KR, HZ: Python reads them
            name = label
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # unknown; a NUL or a surrogate in the label
        return ""
    name = info.name.replace("-", "_")
    if not info._is_text_encoding or name in _NOT_MAIL_CHARSETS:
        return ""
    return _SUPERSETS.get(name, name)


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.groups()
    charset = charset.split("*", 1)[0] or "us-ascii"  # RFC 2231 language suffix
    try:
        if encoding in "bB":
            data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        else:
            data = quopri.decodestring(payload.replace("_", " ").encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return match.group(0).replace("=?", _DEFUSE)
    try:  # an unknown charset: best effort, never the raw word
        return data.decode(codec_for(charset) or "utf-8", "replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", "replace")


def decode_words(text: str) -> str:
    """``text`` with its encoded words decoded once (adjacent words joined)."""
    if "=?" not in text:
        return text
    return ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub(r"\1\2", text))


def clean_text(value: object, *, limit: int = 900) -> str:
    """One line of plain text, whatever was hidden in ``value``.

    Encoded words are decoded (again and again: a double-encoded value hides its
    line break one level down), every line break or control character becomes a
    space, a lone surrogate (UTF-7 can decode to one) becomes U+FFFD, and an
    ``=?`` still left is defused, so that decoding the result, once or many times,
    gives the result.
    """
    text = str(value)
    for _round in range(MAX_DECODE_ROUNDS):
        text = _BREAKS_AND_CONTROLS.sub(" ", text)
        decoded = decode_words(text)
        if decoded == text:
            break
        text = decoded
    text = _LONE_SURROGATES.sub("\ufffd", text)
    text = _BREAKS_AND_CONTROLS.sub(" ", text)
    text = text.replace("=?", _DEFUSE)
    text = _SPACES.sub(" ", text).strip()
    return text[:limit].strip()


def clean_filename(value: object) -> str:
    """A file name to write in a MIME part: clean text, no path, no quotes."""
    name = clean_text(value, limit=200)
    name = re.split(r"[/\\]", name)[-1].replace('"', "'").strip().lstrip(".")
    return name.strip() or "attachment"


def clean_content_id(value: object) -> str:
    """``<id>`` of an inline part, from characters that need no quoting only."""
    text = clean_text(value, limit=200).strip("<> ")
    text = _CONTENT_ID_CHARS.sub("_", text)
    return f"<{text or 'part'}>"


# --- Writing -------------------------------------------------------------------------


def is_plain(text: str, *, word_max: int = _PLAIN_WORD_MAX) -> bool:
    """Printable ASCII that no decoder touches, in words short enough to fold."""
    return (
        text.isascii()
        and text.isprintable()
        and "=?" not in text
        and all(len(w) <= word_max for w in text.split(" "))
    )


def encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 base64 encoded words of whole characters (RFC 2047)."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > _CHUNK_BYTES:
            words.append(_word(chunk))
            chunk = b""
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return words


def _word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def unstructured_tokens(text: str) -> list[str]:
    """Tokens of an unstructured value (Subject, custom headers), already clean."""
    if not text:
        return []
    if is_plain(text):
        return text.split(" ")
    return encoded_words(text)


def phrase_tokens(name: str) -> list[str]:
    """Tokens of a display name: a quoted string, or encoded words."""
    if not name:
        return []
    if is_plain(name, word_max=60) and len(name) <= 60:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return [f'"{escaped}"']
    return encoded_words(name)


@dataclass(frozen=True)
class Mailbox:
    """A checked ``name <local@domain>`` (domain in its ASCII form)."""

    name: str
    local: str
    domain: str

    @property
    def addr_spec(self) -> str:
        return f"{self.local}@{self.domain}"

    def tokens(self) -> list[str]:
        if not self.name:
            return [self.addr_spec]
        return [*phrase_tokens(self.name), f"<{self.addr_spec}>"]

    def __str__(self) -> str:
        return " ".join(self.tokens())


@functools.lru_cache(maxsize=4096)  # a fan-out's recipients share their domains
def ascii_domain(domain: str) -> str:
    """The domain in its ASCII (IDNA) form; raises :class:`InvalidAddress`."""
    domain = domain.strip().rstrip(".")
    try:
        ascii_form = domain.encode("idna").decode("ascii") if domain else ""
    except UnicodeError as exc:
        raise InvalidAddress(f"{domain!r} is not a domain name") from exc
    labels = ascii_form.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidAddress(f"{domain!r} is not a domain name")
    return ascii_form


def make_mailbox(name: object, addr_spec: object, *, utf8: bool = False) -> Mailbox:
    """A checked mailbox: clean display name, dot-atom local part, real domain.

    ``utf8``: the local part may hold printable non-ASCII characters (RFC 6532)."""
    address = str(addr_spec).strip()
    local, at, domain = address.rpartition("@")
    local_part = _UTF8_LOCAL_PART if utf8 else _LOCAL_PART
    if (
        not at
        or not local_part.match(local)
        or not local.isprintable()
        or "=?" in local
        or len(local) > 64
        or len(address) > 254
    ):
        raise InvalidAddress(f"{address!r} is not an email address")
    return Mailbox(clean_text(name, limit=200), local, ascii_domain(domain))


def check_message_id(value: str) -> str:
    """``<left@right>`` of printable ASCII; raises ValueError otherwise."""
    value = value.strip()
    if not MESSAGE_ID.match(value):
        raise ValueError(f"{value!r} is not a Message-ID")
    return value


def is_header_name(name: str) -> bool:
    return bool(_HEADER_NAME.match(name))


def check_header_name(name: str) -> str:
    if not is_header_name(name):
        raise ValueError(f"{name!r} is not a header name")
    return name


class HeaderBlock:
    """The header fields of a message, written and folded by us (CRLF, 7-bit; with
    ``utf8``, printable non-ASCII tokens too: a UTF-8 local part, RFC 6532)."""

    def __init__(self, *, utf8: bool = False) -> None:
        self._lines: list[str] = []
        self.names: list[str] = []
        self.utf8 = utf8

    def _add(self, name: str, tokens: Iterable[str], *, sep: str = " ") -> None:
        check_header_name(name)
        line = f"{name}:"
        lines: list[str] = []
        for token in tokens:
            if not token.isprintable() or not (self.utf8 or token.isascii()):
                raise ValueError(f"{token!r} cannot be written in {name}")
            if len(line) + 1 + len(token) > LINE_MAX and line.strip(" ,") != f"{name}:":
                lines.append(line)
                line = ""
            line += " " + token
        lines.append(line)
        self._lines.append("\r\n".join(lines) + "\r\n")
        self.names.append(name.lower())

    def text(self, name: str, value: object, *, limit: int = 900) -> None:
        """An unstructured field (Subject, custom headers) from any text."""
        self._add(name, unstructured_tokens(clean_text(value, limit=limit)))

    def mailboxes(self, name: str, mailboxes: Iterable[Mailbox]) -> None:
        """An address list; each mailbox but the last followed by a comma."""
        tokens: list[str] = []
        for mailbox in mailboxes:
            if tokens:
                tokens[-1] += ","
            tokens += mailbox.tokens()
        self._add(name, tokens)

    def message_ids(self, name: str, values: Iterable[str]) -> None:
        self._add(name, [check_message_id(v) for v in values])

    def token(self, name: str, value: str) -> None:
        """A value we generated (Date, a fixed keyword): printable ASCII only."""
        if not is_plain(value, word_max=900):
            raise ValueError(f"{value!r} cannot be written in {name}")
        self._add(name, value.split(" "))

    def as_bytes(self) -> bytes:
        return "".join(self._lines).encode("utf-8" if self.utf8 else "ascii")


def written_header_names(raw: bytes) -> list[str]:
    """The names of the top-level header fields of ``raw`` (lower case), or raise
    ValueError for a line that is neither a field nor a folded continuation."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            continue
        name, colon, _value = line.partition(b":")
        if not colon or not _HEADER_NAME.match(name.decode("ascii", "replace")):
            raise ValueError(f"not a header line: {line[:80]!r}")
        names.append(name.decode("ascii").lower())
    return names
