"""Garbage collection of attachment blobs: rows no attachment references, and files
under ``blobs/`` with no row (left by rolled-back posts).

Only what is older than the grace period goes. Each deletion re-checks under a lock:
a row is taken ``FOR UPDATE`` (posts reusing it hold ``FOR KEY SHARE`` until they
commit, see ``feed.attachments.store_blob``), a stray file is claimed by inserting
its sha256 (a post writing those bytes holds that key). The file is deleted while
the lock is held; a post that later finds it missing writes it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import Storage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from feed.models import Attachment, Blob

logger = logging.getLogger(__name__)

# A post commits within seconds; a day leaves room for any transaction still open.
GRACE = timedelta(days=1)
BATCH = 500
BLOB_DIR = "blobs"
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class GcReport:
    """What a pass deleted (or, dry run, would delete): ``(storage name, bytes)``."""

    rows: list[tuple[str, int]] = field(default_factory=list)
    stray_files: list[tuple[str, int]] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.rows + self.stray_files)


def collect_unused_blobs(
    *, grace: timedelta = GRACE, dry_run: bool = False
) -> GcReport:
    """Delete blobs older than ``grace`` that no attachment references, with their
    files, then stray blob files older than ``grace``; ``dry_run`` deletes nothing."""
    cutoff = timezone.now() - grace
    storage = Blob._meta.get_field("file").storage
    report = GcReport()
    for blob in _unreferenced_blobs(cutoff):
        size = _file_size(storage, blob.file.name)
        if dry_run or _delete_blob(pk=blob.pk, cutoff=cutoff):
            report.rows.append((blob.file.name, size))
    for name, digest in _stray_files(storage, cutoff):
        size = _file_size(storage, name)
        if dry_run or _delete_stray_file(storage=storage, name=name, digest=digest):
            report.stray_files.append((name, size))
    if not dry_run:
        logger.info(
            "blob gc: %d rows and %d stray files deleted, %d bytes freed",
            len(report.rows),
            len(report.stray_files),
            report.bytes_freed,
        )
    return report


def _unreferenced_blobs(cutoff: datetime) -> Iterator[Blob]:
    """Candidates only: each is checked again under its lock before it goes."""
    referenced = Attachment.objects.filter(blob=OuterRef("pk"))
    candidates = Blob.objects.filter(created_at__lt=cutoff).exclude(Exists(referenced))
    last_pk = 0
    while batch := list(candidates.filter(pk__gt=last_pk).order_by("pk")[:BATCH]):
        yield from batch
        last_pk = batch[-1].pk


def _delete_blob(*, pk: int, cutoff: datetime) -> bool:
    """Delete the row and its file if it is still old and unreferenced under lock."""
    with transaction.atomic():
        blob = (
            Blob.objects.select_for_update()
            .filter(pk=pk, created_at__lt=cutoff)
            .first()
        )
        # A post that picked this blob held the row until it committed: its
        # attachment is visible now (READ COMMITTED), and the blob stays.
        if blob is None or Attachment.objects.filter(blob_id=pk).exists():
            return False
        name = blob.file.name
        blob.delete()
        # Still inside the lock: a post waiting for this row finds it gone, makes a
        # new one and writes the file after this deletion, never before it.
        blob.file.storage.delete(name)
    return True


def _stray_files(storage: Storage, cutoff: datetime) -> Iterator[tuple[str, str]]:
    """``(name, sha256)`` of files under ``blobs/`` older than ``cutoff`` whose
    sha256 has no row (checked again when claimed)."""
    if not storage.exists(BLOB_DIR):
        return
    for first in storage.listdir(BLOB_DIR)[0]:
        for second in storage.listdir(f"{BLOB_DIR}/{first}")[0]:
            folder = f"{BLOB_DIR}/{first}/{second}"
            digests = [d for d in storage.listdir(folder)[1] if SHA256.fullmatch(d)]
            known = set(
                Blob.objects.filter(sha256__in=digests).values_list("sha256", flat=True)
            )
            for digest in digests:
                name = f"{folder}/{digest}"
                if digest in known or storage.get_modified_time(name) >= cutoff:
                    continue
                yield name, digest


def _delete_stray_file(*, storage: Storage, name: str, digest: str) -> bool:
    """Claim the sha256 with a row of our own, delete the file, drop the claim.

    A post storing these bytes has inserted (or will insert) the same key: the claim
    waits for it and fails if it committed; a later post waits for the claim and then
    writes the file again.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                claim = Blob.objects.create(sha256=digest, size=0, file=name)
        except IntegrityError:  # a post committed a row for these bytes
            return False
        is_there = storage.exists(name)  # not if another pass deleted it meanwhile
        if is_there:
            storage.delete(name)
        claim.delete()
    return is_there


def _file_size(storage: Storage, name: str) -> int:
    try:
        return storage.size(name)
    except FileNotFoundError:
        return 0
