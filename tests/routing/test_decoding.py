"""Decoding of received mail: charsets under their other names, data: images in the
HTML, parts whose type has no subtype (real .eml bytes, parsed and routed)."""

from __future__ import annotations

import base64

import pytest

from feed.models import Attachment, Message
from routing.parsing import parse_message
from tests.routing.conftest import DATA

CHARSETS = {
    "iso-8859-8-i": ("בקשה חדשה", "שלום, המדפסת לא עובדת"),
    "windows-874": ("คำขอใหม่", "สวัสดีครับ เครื่องพิมพ์เสีย"),
    "ks_c_5601-1987": ("새 요청 똠", "똠방각하, 프린터가 고장났습니다"),
    "cp65001": ("Neue Anfrage ✓", "Grüße — the printer is broken ✓"),
}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize("label", sorted(CHARSETS))
def test_charset_known_under_another_name_decodes(label):
    """Subject (encoded word) and body in a charset Python knows by another name."""
    parsed = parse_message(
        (DATA / "routing" / "charsets" / f"{label}.eml").read_bytes()
    )
    subject, body = CHARSETS[label]
    assert parsed.subject == subject
    assert parsed.body_text.strip() == body


@pytest.mark.parametrize("label", sorted(CHARSETS))
def test_charset_message_creates_a_readable_ticket(aliases, route, label):
    """Routed, the ticket's title and the posted text are the decoded ones."""
    from knowlix.models import Ticket

    raw = (DATA / "routing" / "charsets" / f"{label}.eml").read_bytes()
    result = route(raw)
    assert result.outcome == "routed"
    subject, body = CHARSETS[label]
    assert Ticket.objects.get().subject == subject
    assert body in Message.objects.get(pk=result.routes[0].message).body_text


def test_data_images_become_inline_attachments():
    """data: images in the HTML are inline parts referenced by cid:, others stay."""
    parsed = parse_message((DATA / "routing" / "data_image.eml").read_bytes())
    png, gif = parsed.attachments
    assert (png.content_type, png.content, png.is_inline) == ("image/png", PNG, True)
    assert gif.content_type == "image/gif" and gif.content.startswith(b"GIF89a")
    assert f'src="cid:{png.content_id}"' in parsed.body_html
    assert f'src="cid:{gif.content_id}"' in parsed.body_html
    assert parsed.body_html.count("data:") == 1  # the text/html one is no image


def test_data_image_is_stored_and_shown_through_its_cid(aliases, route):
    """Routed, the images are attachments of the message and the HTML points at them."""
    result = route((DATA / "routing" / "data_image.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    images = Attachment.objects.filter(message=message).order_by("filename")
    assert [(a.filename, a.mimetype) for a in images] == [
        ("image-1.png", "image/png"),
        ("image-2.gif", "image/gif"),
    ]
    assert images[0].blob.file.read() == PNG
    for image in images:
        assert f'src="cid:{image.content_id}"' in message.body_html
    assert "data:" not in message.body_html  # the sanitizer drops what is left


def test_data_image_over_the_limit_is_named_not_kept(aliases, route, settings):
    """A data: image above the attachment size limit is left out and named."""
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 60
    result = route((DATA / "routing" / "data_image.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    assert [a.filename for a in message.attachments.all()] == ["image-2.gif"]
    assert "image-1.png" in message.body_text
    assert "exceeds the size limit" in message.body_text


def test_bare_content_type_is_octet_stream_not_text():
    """A part typed bare "pdf" is an application/octet-stream attachment."""
    parsed = parse_message((DATA / "routing" / "bare_content_type.eml").read_bytes())
    assert parsed.body_text.strip() == "Here is the invoice."
    (attachment,) = parsed.attachments
    assert attachment.filename == "invoice.pdf"
    assert attachment.content_type == "application/octet-stream"
    assert attachment.content.startswith(b"%PDF-1.4")


# Labels WHATWG maps to its "replacement" decoder or to a codec Python lacks, labels
# with a NUL or a lone surrogate, and Python-only codecs that are no mail charset.
ODD_CHARSETS = [
    "iso-2022-kr",
    "hz-gb-2312",
    "x-user-defined",
    "utf-8\x00",
    "utf-8\udcff",
    "unicode_escape",
    "raw-unicode-escape",
    "punycode",
]


@pytest.mark.parametrize("label", ODD_CHARSETS)
def test_odd_charset_label_routes_with_a_fallback(aliases, route, label):
    """An odd declared charset never stops routing; the text decodes as UTF-8."""
    from knowlix.models import Ticket

    raw = (
        "From: Dana <dana@customer.example>\r\nTo: helpdesk@example.com\r\n"
        f"Subject: =?{label}?q?caf=C3=A9?=\r\nMessage-ID: <odd-charset@x.example>\r\n"
        f'Content-Type: text/plain; charset="{label}"\r\n\r\n'
        "caf\u00e9 \\x0d\\x0aBcc: x \\u0041\r\n"
    ).encode("utf-8", "surrogateescape")
    result = route(raw)
    assert result.outcome == "routed"
    text = Message.objects.get(pk=result.routes[0].message).body_text
    assert "café \\x0d\\x0aBcc: x \\u0041" in text  # no Python escapes decoded
    assert Ticket.objects.get().subject.startswith("caf")


@pytest.mark.parametrize(
    ("declared", "codec"),
    [(' "windows-874" ', "cp874"), ("' ks_c_5601-1987 '", "cp949"), ("UTF8", "utf_8")],
)
def test_charset_label_with_spaces_and_quotes(declared, codec):
    """A label wrapped in spaces and quotes is the label."""
    from mailservers.headers import codec_for

    assert codec_for(declared) == codec


def test_data_image_whose_bytes_are_not_its_type_is_not_kept():
    """An SVG with a script (or HTML) declared image/png is no image: it does not
    become an attachment, and the sanitizer drops the data: URL it stays as."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    payload = base64.b64encode(svg).decode()
    raw = (
        "From: Dana <dana@customer.example>\r\nTo: helpdesk@example.com\r\n"
        "Subject: images\r\nMessage-ID: <svg-as-png@x.example>\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p><img src="data:image/png;base64,{payload}">'
        f'<img src="data:image/svg+xml;base64,{payload}">'
        f'<img src="data:image/gif,%3Csvg%3E"></p>\r\n'
    ).encode()
    parsed = parse_message(raw)
    assert parsed.attachments == []
    assert "cid:" not in parsed.body_html
