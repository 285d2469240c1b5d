"""Attachment storage: content-addressed blobs through Django's storage API.

A file is stored once per sha256 (identical uploads share one ``Blob``); each
``Attachment`` row names it, with its filename and type, for one message. Sizes are
checked against ``settings.KNOWLIX_ATTACHMENT_MAX_BYTES`` before anything is written.
``feed.blob_gc`` deletes blobs nobody uses: a blob row is locked from the moment a post
picks it until that post commits, and its file is written again if it went missing.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from feed.errors import AttachmentTooLarge
from feed.models import Attachment, Blob, Message, blob_path


@dataclass(frozen=True)
class AttachmentInput:
    """A file given as bytes (incoming mail, tasks, commands)."""

    filename: str
    content: bytes
    mimetype: str = ""
    # The MIME Content-ID without angle brackets, for cid: images in the body.
    content_id: str = ""


AttachmentSource = AttachmentInput | UploadedFile


def max_attachment_bytes() -> int:
    return int(settings.KNOWLIX_ATTACHMENT_MAX_BYTES)


def _as_input(source: AttachmentSource) -> AttachmentInput:
    if isinstance(source, AttachmentInput):
        return source
    limit = max_attachment_bytes()
    if source.size is not None and source.size > limit:
        raise_too_large(source.name or "file", source.size)
    source.seek(0)
    content = source.read()
    return AttachmentInput(
        filename=source.name or "file",
        content=content,
        mimetype=getattr(source, "content_type", "") or "",
    )


def raise_too_large(filename: str, size: int) -> None:
    raise AttachmentTooLarge(
        _("%(name)s is %(size)s; files may be at most %(limit)s.")
        % {
            "name": filename,
            "size": filesizeformat(size),
            "limit": filesizeformat(max_attachment_bytes()),
        }
    )


def check_sizes(sources: Iterable[AttachmentSource]) -> list[AttachmentInput]:
    """Read the files, refusing any above the limit (nothing is stored yet)."""
    inputs = [_as_input(s) for s in sources]
    for item in inputs:
        if len(item.content) > max_attachment_bytes():
            raise_too_large(item.filename, len(item.content))
    return inputs


def clean_filename(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "file"


def store_blob(content: bytes) -> Blob:
    """The blob holding ``content``, written to storage only if it is missing.

    Call inside the transaction that attaches it (``post_message`` does): the row
    stays locked until that transaction ends, so the collector (``feed.blob_gc``)
    cannot delete it before the attachment that references it is committed.
    """
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic(savepoint=False):
        blob = lock_blob(digest)
        if blob is None:
            blob = Blob(sha256=digest, size=len(content))
            blob.file.name = blob_path(blob, digest)
            try:
                # The row first, then the file: the unique sha256 is the claim that
                # a concurrent upload of the same bytes, or the collector about to
                # delete a stray file of this name, waits on until we commit.
                with transaction.atomic():
                    blob.save()
            except IntegrityError:  # a concurrent upload of the same bytes won
                blob = lock_blob(digest)
                if blob is None:  # and its row is gone already: not ours to guess
                    raise
        ensure_blob_file(blob, content)
    return blob


def lock_blob(digest: str) -> Blob | None:
    """The blob row of ``digest``, locked against deletion until the transaction ends.

    The collector takes ``FOR UPDATE`` on a row before deleting it; ``FOR KEY SHARE``
    (PostgreSQL) conflicts with that but not with other posts reusing the same file.
    Elsewhere ``select_for_update`` (SQLite serializes write transactions anyway).
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Blob._meta.db_table)
        query = f"SELECT * FROM {table} WHERE sha256 = %s FOR KEY SHARE"
        return next(iter(Blob.objects.raw(query, [digest])), None)
    return Blob.objects.select_for_update().filter(sha256=digest).first()


def ensure_blob_file(blob: Blob, content: bytes) -> None:
    """Write the blob's file if it is not in storage (new, or deleted by a collector
    pass whose transaction then failed)."""
    storage = blob.file.storage
    name = blob.file.name
    if storage.exists(name):  # ours, or left by a rolled-back upload of these bytes
        return
    saved = storage.save(name, ContentFile(content))
    if saved != name:  # a concurrent post wrote the same bytes first
        storage.delete(saved)


def store_attachments(
    *, message: Message, files: Iterable[AttachmentInput]
) -> list[Attachment]:
    """Attach already size-checked files to ``message``."""
    rows = []
    for item in files:
        filename = clean_filename(item.filename)
        mimetype = (
            item.mimetype
            or mimetypes.guess_type(filename)[0]
            or "application/octet-stream"
        )
        rows.append(
            Attachment(
                message=message,
                blob=store_blob(item.content),
                filename=filename,
                mimetype=mimetype.lower()[:127],
                content_id=item.content_id.strip("<> ")[:255],
            )
        )
    return Attachment.objects.bulk_create(rows)
