"""Every corpus message ends routed or quarantined (or as a bounce/refusal it is),
never as an unhandled exception, and its raw bytes are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from feed.models import Attachment, Message
from routing.models import InboundMail

CORPUS = sorted(
    (Path(__file__).resolve().parent.parent / "data" / "corpus").glob("*.eml")
)
EXPECTED = {"routed", "quarantined", "bounce", "refused", "ignored"}


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_message_is_routed_or_quarantined(aliases, route, path):
    """Routing a malformed or exotic message never raises and keeps the bytes."""
    raw = path.read_bytes()
    result = route(raw)
    assert result.outcome in EXPECTED, result.reason
    inbound = InboundMail.objects.get()
    assert bytes(inbound.raw) == raw
    assert inbound.outcome == result.outcome
    if result.outcome == "quarantined":
        assert inbound.unprocessed.reason


def test_binary_noise_is_quarantined(aliases, route):
    """Bytes that are not a message are quarantined with the parse error."""
    raw = (CORPUS[0].parent / "gen_binary_noise.eml").read_bytes()
    result = route(raw)
    assert result.outcome == "quarantined"
    assert "no mail headers" in result.reason


def test_cid_image_is_stored_with_its_content_id(aliases, route):
    """An inline cid: image becomes an attachment the HTML body can reference."""
    result = route((CORPUS[0].parent / "related_cid_image.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    image = Attachment.objects.get(message=message)
    assert image.content_id == "shot1@client.example.org"
    assert 'src="cid:shot1@client.example.org"' in message.body_html


def test_html_body_is_sanitized(aliases, route):
    """Scripts and javascript: links never reach the stored HTML."""
    result = route((CORPUS[0].parent / "html_only.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    assert "<b>team</b>" in message.body_html
    assert "script" not in message.body_html and "javascript" not in message.body_html


def test_html_over_budget_falls_back_to_text_and_keeps_the_html(aliases, route):
    """A huge HTML body is posted as text, the original HTML attached, and said so."""
    result = route((CORPUS[0].parent / "gen_huge_html.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    assert "too large to display" in message.body_text
    original = Attachment.objects.get(message=message)
    assert original.filename == "original-body.html"
    assert original.size > 400_000


def test_attachment_over_the_limit_is_named_not_dropped_silently(
    aliases, route, settings
):
    """An attachment above the size limit is left out and named in the body."""
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 20
    result = route((CORPUS[0].parent / "rfc2231_filename_latin1.eml").read_bytes())
    message = Message.objects.get(pk=result.routes[0].message)
    assert not message.attachments.exists()
    assert "résumé André.pdf" in message.body_text
    assert "exceeds the size limit" in message.body_text
