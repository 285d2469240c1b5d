"""Posting: bodies, Message-IDs, attachments, followers, record events."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q

from feed import services
from feed.attachments import AttachmentInput
from feed.errors import AttachmentTooLarge, EmptyMessage
from feed.models import Attachment, Blob, Follower, Message, Subtype

pytestmark = pytest.mark.django_db


def test_created_record_is_followed_and_announced(ticket, alice, contact):
    """Creating a record makes owner and contact follow and posts "created"."""
    followers = Follower.objects.filter(object_id=ticket.pk)
    assert {(f.user_id, f.contact_id) for f in followers} == {
        (alice.pk, None),
        (None, contact.pk),
    }
    message = Message.objects.get(object_id=ticket.pk)
    assert message.kind == Message.Kind.NOTIFICATION
    assert message.subtype.code == Subtype.CREATED
    assert "created" in message.body_text


def test_contact_follows_public_subtypes_only(ticket, contact):
    """A contact is subscribed to discussions, never to internal subtypes."""
    follower = Follower.objects.get(contact=contact, object_id=ticket.pk)
    assert [s.code for s in follower.subtypes.all()] == ["discussion"]


def test_follow_is_idempotent(ticket, bob):
    """Following twice keeps one row."""
    services.follow(record=ticket, user=bob)
    services.follow(record=ticket, user=bob)
    assert Follower.objects.filter(user=bob).count() == 1
    services.unfollow(record=ticket, user=bob)
    assert not Follower.objects.filter(user=bob).exists()


def test_body_is_sanitized_and_rendered_as_text(ticket, alice):
    """The stored body is sanitized; a text rendering is kept beside it."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        body_html='<p onclick="x()">Hi <b>team</b><script>alert(1)</script></p>',
    )
    assert message.body_html == "<p>Hi <b>team</b></p>"
    assert message.body_text == "Hi team"
    assert message.email_from == "Alice <alice@example.com>"


def test_message_id_is_generated_or_kept(ticket, alice, contact):
    """Our own posts get a fresh Message-ID; incoming ones keep theirs."""
    ours = services.post_message(
        record=ticket, kind="note", author=alice, body_html="a"
    )
    assert ours.message_id.startswith("<knowlix.") and ours.message_id.endswith(">")
    theirs = services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        message_id="<given@customer.example>",
        body_text="b",
    )
    assert theirs.message_id == "<given@customer.example>"
    assert theirs.direction == Message.Direction.INCOMING


def test_empty_message_is_refused(ticket, alice):
    """A post with neither text nor file is refused."""
    with pytest.raises(EmptyMessage):
        services.post_message(
            record=ticket, kind="note", author=alice, body_html="<p> </p>"
        )


def test_empty_incoming_mail_is_kept(ticket, contact):
    """A received mail with neither body nor file is still posted (subject only)."""
    message = services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        subject="Call me",
        message_id="<empty@customer.example>",
    )
    assert (message.subject, message.body_html) == ("Call me", "")


def test_author_follows_what_they_write(ticket, bob):
    """A user posting on a record starts following it."""
    services.post_message(record=ticket, kind="note", author=bob, body_html="hi")
    assert Follower.objects.filter(user=bob, object_id=ticket.pk).exists()


def test_several_attachments_share_identical_content(ticket, alice):
    """Files are content-addressed: the same bytes are stored once."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        body_html="files",
        attachments=[
            SimpleUploadedFile(
                "a.pdf", b"%PDF-1.4 same", content_type="application/pdf"
            ),
            AttachmentInput(filename="copy.pdf", content=b"%PDF-1.4 same"),
            AttachmentInput(
                filename="logo.png", content=b"\x89PNG..", content_id="<logo@x>"
            ),
        ],
    )
    rows = list(message.attachments.order_by("id"))
    assert [a.filename for a in rows] == ["a.pdf", "copy.pdf", "logo.png"]
    assert [a.mimetype for a in rows] == [
        "application/pdf",
        "application/pdf",
        "image/png",
    ]
    assert rows[0].blob_id == rows[1].blob_id != rows[2].blob_id
    assert rows[2].content_id == "logo@x"
    assert Blob.objects.count() == 2
    with rows[0].blob.file.open("rb") as fh:
        assert fh.read() == b"%PDF-1.4 same"


def test_attachment_only_message_is_accepted(ticket, alice):
    """A file alone is a valid post."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        attachments=[AttachmentInput(filename="x.txt", content=b"x")],
    )
    assert message.attachments.count() == 1


def test_too_large_attachment_stores_nothing(ticket, alice, settings):
    """Above KNOWLIX_ATTACHMENT_MAX_BYTES: a clear error and no row or file."""
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 10
    before = Message.objects.count()
    with pytest.raises(AttachmentTooLarge) as exc:
        services.post_message(
            record=ticket,
            kind="note",
            author=alice,
            body_html="big",
            attachments=[AttachmentInput(filename="big.bin", content=b"x" * 11)],
        )
    assert (
        exc.value.user_message
    ) == "big.bin is 11\xa0bytes; files may be at most 10\xa0bytes."
    assert Message.objects.count() == before
    assert not Attachment.objects.exists() and not Blob.objects.exists()


def test_filenames_are_cleaned(ticket, alice):
    """Paths and control characters are removed from uploaded names."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        attachments=[AttachmentInput(filename="..\\..\\etc/pass\x00wd", content=b"x")],
    )
    assert message.attachments.get().filename == "passwd"


def test_tracking_posts_each_change(ticket, alice, bob):
    """Assigning and changing stage posts one notification listing both."""
    from feed.services import records as record_services

    ticket.stage = ticket.Stage.IN_PROGRESS
    ticket.assignee = bob
    record_services.update_record(
        record=ticket, author=alice, changed_fields=["stage", "assignee"]
    )
    message = Message.objects.get(subtype__code="stage")
    assert "New → In progress" in message.body_text
    assert "Bob" in message.body_text  # by full name, as everywhere
    # the new assignee follows the record
    assert Follower.objects.filter(Q(user=bob), object_id=ticket.pk).exists()
