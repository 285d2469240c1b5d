"""Garbage collection of attachment blobs, against the files on disk."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from feed import blob_gc, services
from feed.attachments import AttachmentInput
from feed.models import Blob

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4 quote for Dana"


def post_file(ticket, alice, content=PDF, filename="quote.pdf"):
    """Post a note with one file; returns its attachment."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        body_html="<p>file</p>",
        attachments=[AttachmentInput(filename=filename, content=content)],
    )
    return message.attachments.get()


def age(blob, days=2):
    """Make the blob's row and file look ``days`` old."""
    then = timezone.now() - timedelta(days=days)
    Blob.objects.filter(pk=blob.pk).update(created_at=then)
    os.utime(blob.file.path, (then.timestamp(), then.timestamp()))


def write_stray_file(media_root, content, days):
    """A blob file with no row (a rolled-back post), ``days`` old."""
    digest = hashlib.sha256(content).hexdigest()
    path = media_root / "blobs" / digest[:2] / digest[2:4] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = (timezone.now() - timedelta(days=days)).timestamp()
    os.utime(path, (then, then))
    return path


def test_old_unreferenced_blob_is_deleted_with_its_file(ticket, alice):
    """A blob no attachment uses, older than the grace period, goes row and file."""
    attachment = post_file(ticket, alice)
    blob, path = attachment.blob, attachment.blob.file.path
    attachment.message.delete()
    age(blob)

    report = blob_gc.collect_unused_blobs()

    assert not Blob.objects.filter(pk=blob.pk).exists()
    assert not os.path.exists(path)
    assert report.rows == [(blob.file.name, len(PDF))]
    assert report.bytes_freed == len(PDF)


def test_referenced_blob_is_kept(ticket, alice):
    """An old blob still attached to a message stays."""
    attachment = post_file(ticket, alice)
    age(attachment.blob)

    report = blob_gc.collect_unused_blobs()

    assert Blob.objects.filter(pk=attachment.blob_id).exists()
    assert os.path.exists(attachment.blob.file.path)
    assert report.bytes_freed == 0


def test_young_unreferenced_blob_is_kept(ticket, alice):
    """Within the grace period an unreferenced blob stays (its post may be in flight)."""
    attachment = post_file(ticket, alice)
    blob = attachment.blob
    attachment.message.delete()

    blob_gc.collect_unused_blobs()

    assert Blob.objects.filter(pk=blob.pk).exists()
    assert os.path.exists(blob.file.path)


def test_dry_run_deletes_nothing_and_says_what_it_would_free(ticket, alice, media_root):
    """--dry-run lists the unreferenced blob and the stray file with their bytes."""
    attachment = post_file(ticket, alice)
    blob = attachment.blob
    attachment.message.delete()
    age(blob)
    stray = write_stray_file(media_root, b"left by a rollback", days=3)
    out = StringIO()

    call_command("gc_blobs", "--dry-run", stdout=out)

    assert Blob.objects.filter(pk=blob.pk).exists()
    assert os.path.exists(blob.file.path) and stray.exists()
    lines = out.getvalue().splitlines()
    assert f"would delete {blob.file.name} ({len(PDF)} bytes, unreferenced)" in lines
    assert any(line.endswith("(18 bytes, no row)") for line in lines)
    assert lines[-1].startswith(
        f"would delete 1 unreferenced blob(s) and 1 stray file(s); "
        f"would free {len(PDF) + 18} bytes"
    )


def test_shared_blob_stays_until_both_attachments_are_gone(ticket, alice):
    """Two posts of the same bytes share a blob; it goes once neither uses it."""
    first = post_file(ticket, alice, filename="quote.pdf")
    second = post_file(ticket, alice, filename="copy.pdf")
    assert first.blob_id == second.blob_id
    blob = first.blob
    age(blob)

    first.message.delete()
    blob_gc.collect_unused_blobs()
    assert Blob.objects.filter(pk=blob.pk).exists()
    assert os.path.exists(blob.file.path)

    second.message.delete()
    blob_gc.collect_unused_blobs()
    assert not Blob.objects.filter(pk=blob.pk).exists()
    assert not os.path.exists(blob.file.path)


def test_old_stray_file_is_deleted_and_young_one_kept(media_root):
    """A blob file with no row goes after the grace period, not before."""
    old = write_stray_file(media_root, b"old rollback", days=2)
    young = write_stray_file(media_root, b"post still in flight", days=0)

    report = blob_gc.collect_unused_blobs()

    assert not old.exists() and young.exists()
    assert [size for _, size in report.stray_files] == [len(b"old rollback")]
    assert not Blob.objects.exists()  # the claim row does not outlive the pass


def test_post_rewrites_a_file_that_went_missing(ticket, alice):
    """A post reusing a blob whose file is gone writes the file again."""
    attachment = post_file(ticket, alice)
    os.remove(attachment.blob.file.path)

    again = post_file(ticket, alice, filename="again.pdf")

    assert again.blob_id == attachment.blob_id
    with again.blob.file.open("rb") as fh:
        assert fh.read() == PDF


def test_post_reuses_a_stray_file_of_the_same_bytes(ticket, alice, media_root):
    """A file left by a rolled-back post is adopted by the next post of those bytes."""
    stray = write_stray_file(media_root, PDF, days=3)

    attachment = post_file(ticket, alice)

    assert attachment.blob.file.path == str(stray)
    blob_gc.collect_unused_blobs()
    assert stray.read_bytes() == PDF


def run_in_thread(target):
    """Start ``target`` in a thread with its own database connection."""
    errors = []

    def run():
        try:
            target()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.django_db(transaction=True)
def test_collector_waits_for_a_post_reusing_the_blob(ticket, alice):
    """A post that picked an unreferenced blob holds it: the collector waits for
    the commit, then sees the new attachment and keeps row and file."""
    attachment = post_file(ticket, alice)
    blob = attachment.blob
    attachment.message.delete()
    age(blob)

    with transaction.atomic():
        reused = post_file(ticket, alice, filename="again.pdf")
        gc, errors = run_in_thread(blob_gc.collect_unused_blobs)
        gc.join(timeout=1.5)
        assert gc.is_alive()  # blocked on the row until this post commits
    gc.join(timeout=30)

    assert not gc.is_alive() and not errors
    assert reused.blob_id == blob.pk
    assert Blob.objects.filter(pk=blob.pk).exists()
    with reused.blob.file.open("rb") as fh:
        assert fh.read() == PDF


@pytest.mark.django_db(transaction=True)
def test_post_during_deletion_gets_its_file_back(ticket, alice, monkeypatch):
    """The collector deletes the file under the row lock; a post of the same bytes
    waits, then stores a new row and writes the file again."""
    attachment = post_file(ticket, alice)
    blob = attachment.blob
    attachment.message.delete()
    age(blob)
    storage = blob.file.storage
    file_deleted, release = threading.Event(), threading.Event()
    delete = storage.delete

    def slow_delete(name):
        delete(name)
        file_deleted.set()
        release.wait(10)  # hold the lock while the post starts

    monkeypatch.setattr(storage, "delete", slow_delete)
    gc, gc_errors = run_in_thread(blob_gc.collect_unused_blobs)
    assert file_deleted.wait(10)
    posted = []
    post, post_errors = run_in_thread(lambda: posted.append(post_file(ticket, alice)))
    post.join(timeout=1.5)
    assert post.is_alive()  # waits for the collector's transaction
    release.set()
    gc.join(timeout=30)
    post.join(timeout=30)

    assert not gc_errors and not post_errors
    assert not Blob.objects.filter(pk=blob.pk).exists()
    (new,) = posted
    assert new.blob_id != blob.pk
    with Blob.objects.get(pk=new.blob_id).file.open("rb") as fh:
        assert fh.read() == PDF


@pytest.mark.django_db(transaction=True)
def test_collector_waits_for_a_post_adopting_a_stray_file(ticket, alice, media_root):
    """A post storing the bytes of an old stray file holds its sha256: the
    collector's claim waits for the commit, fails, and the file stays."""
    stray = write_stray_file(media_root, PDF, days=3)

    with transaction.atomic():
        attachment = post_file(ticket, alice)
        gc, errors = run_in_thread(blob_gc.collect_unused_blobs)
        gc.join(timeout=1.5)
        assert gc.is_alive()  # the claim waits for this post's row
    gc.join(timeout=30)

    assert not gc.is_alive() and not errors
    assert Blob.objects.filter(pk=attachment.blob_id).exists()
    assert stray.read_bytes() == PDF


def test_command_refuses_a_zero_grace_period(db):
    """--grace-hours 0 would race in-flight posts: refused."""
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="at least 1"):
        call_command("gc_blobs", "--grace-hours", "0")
