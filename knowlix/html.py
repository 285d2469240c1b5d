"""HTML bodies of feed messages and mail: sanitize them, and render them as text.

Every body (typed in the composer or received by mail) goes through
:func:`sanitize_html` before it is stored; templates still escape nothing else.
The sanitizer is ``nh3`` (ammonia), never a regex: scripts, event handlers,
``javascript:``/``data:`` URLs, SVG and CSS expressions do not survive it.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q",
    "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip

# Tags removed together with their content (not merely unwrapped).
DROPPED_WITH_CONTENT = {
    "script", "style", "title", "noscript", "template", "svg", "math", "iframe",
    "object",
}  # fmt: skip

ALLOWED_ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "width"},
    "td": {"colspan", "rowspan", "width", "valign"},
    "th": {"colspan", "rowspan", "width", "valign"},
    "ol": {"start"},
}

STYLE_PROPERTIES = {
    "color", "background-color", "font-weight", "font-style", "font-size",
    "font-family", "text-align", "text-decoration", "vertical-align", "margin",
    "margin-left", "margin-right", "margin-top", "margin-bottom", "padding",
    "padding-left", "padding-right", "padding-top", "padding-bottom", "border",
    "border-collapse", "width", "height", "white-space", "line-height",
}  # fmt: skip

LINK_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
# Images load only from https or from the message's own parts (cid:).
IMAGE_SCHEMES = ("https:", "cid:")
_UNSAFE_CSS = re.compile(r"expression|url\s*\(|javascript|behaviou?r|@import|\\", re.I)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and _UNSAFE_CSS.search(value):
        return None
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith(IMAGE_SCHEMES) else None
    return value


# Short bodies repeat (the system notices: "<p>Ticket created</p>"): both
# renderings are pure functions of the text, so those are computed once each.
_CACHED_CHARS = 300


def sanitize_html(html: str) -> str:
    """A safe subset of ``html``: rich text, links (rel=noopener), https/cid images."""
    if not html:
        return ""
    if len(html) <= _CACHED_CHARS:
        return _sanitize_short(html)
    return _sanitize(html)


# The rules built once: ``nh3.clean`` with these arguments builds them anew on every
# call (~55 µs, ten times the cleaning of a short body); a Cleaner is immutable and
# used from any thread.
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes=LINK_SCHEMES,
    filter_style_properties=STYLE_PROPERTIES,
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def _sanitize(html: str) -> str:
    return _CLEANER.clean(html).strip()


_sanitize_short = functools.lru_cache(maxsize=256)(_sanitize)


# A remote image in sanitized HTML (nh3 writes every attribute double-quoted): any
# src but the message's own parts (cid:), since the sanitizer keeps https: sources
# and browsers read "https:host/x", "https:/host", "https:\\host" and " https://host"
# alike as https://host/.
_REMOTE_IMG = re.compile(r'<img\b[^>]*\bsrc="(?!\s*cid:)[^"]*"[^>]*>', re.I)
_ALT = re.compile(r'\balt="([^"]*)"')


def has_remote_image(html: str) -> bool:
    """Sanitized ``html`` would load an image from another site."""
    return bool(_REMOTE_IMG.search(html))


def block_remote_images(html: str) -> str:
    """Sanitized ``html`` with every remote image replaced by a placeholder: no
    request leaves the reader's browser (tracking pixels) until asked."""

    def placeholder(match: re.Match[str]) -> str:
        alt = _ALT.search(match.group(0))
        label = alt.group(1) if alt and alt.group(1) else "image"
        return (
            '<span class="blocked-image" title="Remote image not loaded">'
            f"[{label}]</span>"
        )

    return _REMOTE_IMG.sub(placeholder, html)


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML paragraphs (for text-only mail and notes)."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip())
    parts = [htmllib.escape(p).replace("\n", "<br>") for p in paragraphs if p]
    return "".join(f"<p>{p}</p>" for p in parts)


_BLOCKS = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "table", "ul", "ol", "hr", "dt", "dd",
}  # fmt: skip


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self._href:
            if self._href.startswith(("http:", "https:")):
                self.parts.append(f" <{self._href}>")
            self._href = None

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text rendering (paragraphs, list dashes, link targets)."""
    if not html:
        return ""
    if len(html) <= _CACHED_CHARS:
        return _html_to_text_short(html)
    return _html_to_text(html)


def _html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    text = re.sub(r"\n\n+(?=- )", "\n", text)  # list items on consecutive lines
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_html_to_text_short = functools.lru_cache(maxsize=256)(_html_to_text)
