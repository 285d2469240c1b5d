"""Attachment storage: content-addressed blobs through Django's storage API.

A file is stored once per sha256 (identical uploads share one ``Blob``); each
``Attachment`` row names it, with its filename and type, for one message. Sizes are
checked against ``settings.KNOWLIX_ATTACHMENT_MAX_BYTES`` before anything is written.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
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
    """The blob holding ``content``, written to storage only if it is new."""
    digest = hashlib.sha256(content).hexdigest()
    blob = Blob.objects.filter(sha256=digest).first()
    if blob is not None:
        return blob
    blob = Blob(sha256=digest, size=len(content))
    name = blob_path(blob, digest)
    try:
        with transaction.atomic():
            if blob.file.storage.exists(name):  # left by a rolled-back upload
                blob.file.name = name
            else:
                blob.file.save(digest, ContentFile(content), save=False)
            blob.save()
    except IntegrityError:  # a concurrent upload of the same bytes won the row
        return Blob.objects.get(sha256=digest)
    return blob


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
