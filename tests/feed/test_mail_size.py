"""The whole-mail size limit is enforced when the user sends, not later."""

from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feed.models import Message
from mailservers.models import OutgoingMail


def post(client, record, **data):
    ct = ContentType.objects.get_for_model(record)
    url = reverse("feed:post", args=[ct.pk, record.pk])
    return client.post(url, data, headers={"HX-Request": "true"})


def scan() -> SimpleUploadedFile:
    return SimpleUploadedFile("scan.pdf", b"%PDF" + b"x" * 25_000)


def test_email_over_the_mail_limit_is_refused_in_the_composer(
    client, alice, ticket, settings
):
    """Encoded files above the limit: a field error, nothing stored, nothing queued."""
    settings.KNOWLIX_MAIL_MAX_BYTES = 30_000
    client.force_login(alice)
    before = Message.objects.count()
    response = post(client, ticket, kind="email", body="Scans", attachments=[scan()])
    assert response.status_code == 422
    assert "above the 29.3\xa0KB limit for one email" in response.text
    assert Message.objects.count() == before
    assert not OutgoingMail.objects.exists()


def test_note_with_the_same_files_is_accepted(client, alice, ticket, settings):
    """Notes are never emailed, so only the per-file limit applies to them."""
    settings.KNOWLIX_MAIL_MAX_BYTES = 30_000
    client.force_login(alice)
    response = post(client, ticket, kind="note", body="Scans", attachments=[scan()])
    assert response.status_code == 200
    note = Message.objects.get(kind="note", body_text__contains="Scans")
    assert note.attachments.get().filename == "scan.pdf"
