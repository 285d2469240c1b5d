"""Write delivery results onto the queue rows (the drain's bookkeeping).

A mail's state always follows from its recipients' states (``finish_mail``):
deferred ones retry with exponential backoff and jitter until ``MAX_ATTEMPTS``.
Delivered mail is written in small groups (``SentLog``). Every function here expects
the rows to be claimed (*sending*) by the calling worker.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailservers.backends.smtp import RecipientResult
from mailservers.models import OutgoingMail, OutgoingRecipient

Mail, Rcpt = OutgoingMail, OutgoingRecipient
MAX_ATTEMPTS = 8
BACKOFF_BASE = 60.0  # seconds before the first retry; doubles each attempt
BACKOFF_CAP = 6 * 3600.0
UNCERTAIN_REASON = gettext_lazy(
    "The worker stopped while sending this mail: Knowlix cannot tell whether it "
    "left. Check with the recipient, then Retry."
)


@dataclass
class DrainReport:
    sent: int = 0  # mails with every recipient done and at least one delivered
    deferred: int = 0
    failed: int = 0
    released: int = 0  # handed back untried (server paused)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with ±50 % jitter, so retries of a burst spread out."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * random.uniform(0.5, 1.5)


class SentLog:
    """Records fully delivered mail (the hot path) in small groups.

    A delivered mail is noted in memory; its mail and recipient rows are written in
    one transaction every ``FLUSH_EVERY`` mails or ``FLUSH_SECONDS``, while the
    server is busy with the next MAIL FROM, and always when the batch ends. Claims
    keep two workers from ever sending the same mail; the one gap SMTP leaves (a 250
    in hand, not yet written) spans at most ``FLUSH_EVERY`` mails plus the one in
    flight: after a crash there, ``recover_stuck_mail`` marks those few as possibly
    sent (never re-sent on their own). Plain SQL: building the ORM
    queries cost more than the SMTP dialogue itself (bench/outgoing.py).
    """

    FLUSH_EVERY = 20
    FLUSH_SECONDS = 0.25

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.since = 0.0
        q = connection.ops.quote_name
        self.mail_sql = (
            f"UPDATE {q(Mail._meta.db_table)} SET state = %s, sent_at = %s, "
            "last_error = '' WHERE state = %s AND id IN ({})"
        )
        self.rcpt_sql = (
            f"UPDATE {q(Rcpt._meta.db_table)} SET state = %s, smtp_code = 250, "
            "last_error = '', updated_at = %s WHERE state = %s AND mail_id IN ({})"
        )

    def note(self, mail_id: int) -> None:
        if len(self.pending) >= self.FLUSH_EVERY:  # never more unwritten than that
            self.flush()
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(mail_id)

    def flush_if_due(self) -> None:
        if len(self.pending) >= self.FLUSH_EVERY or (
            self.pending and time.monotonic() - self.since >= self.FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        marks = ", ".join(["%s"] * len(self.pending))
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Don't wait for the WAL flush: a worker crash loses nothing; only a
                # crash of PostgreSQL itself within ~0.2 s widens the gap above.
                cursor.execute("SET LOCAL synchronous_commit TO off")
            cursor.execute(
                self.mail_sql.format(marks),
                [Mail.State.SENT, now, Mail.State.SENDING, *self.pending],
            )
            cursor.execute(
                self.rcpt_sql.format(marks),
                [Rcpt.State.SENT, now, Rcpt.State.SENDING, *self.pending],
            )
        self.pending = []


def record_results(
    mail_id: int,
    results: dict[str, RecipientResult],
    report: DrainReport,
    *,
    rest: tuple[str, str] | None = None,
) -> None:
    """Some recipient was refused: write each one's result and derive the mail's.

    ``rest``: (state, reason) for the recipients without a result (the mail's
    connection failed before their transaction ended)."""
    now = timezone.now()
    with transaction.atomic():
        sending = Rcpt.objects.filter(mail_id=mail_id, state=Rcpt.State.SENDING)
        for address, result in results.items():
            state = (
                Rcpt.State.SENT
                if result.ok
                else Rcpt.State.FAILED
                if result.permanent
                else Rcpt.State.DEFERRED
            )
            sending.filter(address=address).update(
                state=state,
                smtp_code=result.code,
                last_error="" if result.ok else result.as_error().user_message,
                updated_at=now,
            )
        errors = [r.as_error().user_message for r in results.values() if not r.ok]
        if rest is not None:
            Rcpt.objects.filter(mail_id=mail_id, state=Rcpt.State.SENDING).update(
                state=rest[0], last_error=rest[1], updated_at=now
            )
            errors.insert(0, rest[1])
        finish_mail(mail_id, errors[0] if errors else "", report)


def mark_sending(mail_id: int, state: str, reason: str, report: DrainReport) -> None:
    """Every recipient still *sending* becomes ``state`` with ``reason``."""
    with transaction.atomic():
        Rcpt.objects.filter(mail_id=mail_id, state=Rcpt.State.SENDING).update(
            state=state, last_error=reason, updated_at=timezone.now()
        )
        finish_mail(mail_id, reason, report)


def finish_mail(mail_id: int, reason: str, report: DrainReport) -> None:
    """Derive the mail's state from its recipients (inside the caller's transaction)."""
    now = timezone.now()
    mail = Mail.objects.select_for_update().defer("raw").get(pk=mail_id)
    states = set(mail.recipients.values_list("state", flat=True))
    if Rcpt.State.DEFERRED in states and mail.attempts >= MAX_ATTEMPTS:
        reason = _("gave up after %(n)s attempts: %(reason)s") % {
            "n": mail.attempts,
            "reason": reason,
        }
        mail.recipients.filter(state=Rcpt.State.DEFERRED).update(
            state=Rcpt.State.FAILED, last_error=reason, updated_at=now
        )
        states = (states - {Rcpt.State.DEFERRED}) | {Rcpt.State.FAILED}
    if Rcpt.State.DEFERRED in states:
        mail.state = Mail.State.DEFERRED
        mail.next_attempt_at = now + timedelta(seconds=backoff_seconds(mail.attempts))
        report.deferred += 1
    elif states & {Rcpt.State.SENT, Rcpt.State.BOUNCED}:
        mail.state = Mail.State.SENT
        report.sent += 1
    elif states == {Rcpt.State.CANCELLED}:
        mail.state = Mail.State.CANCELLED
    else:
        mail.state = Mail.State.FAILED
        report.failed += 1
    if Rcpt.State.SENT in states and mail.sent_at is None:
        mail.sent_at = now
    mail.last_error = reason[:2000]
    mail.last_error_at = now if reason else mail.last_error_at
    mail.save(
        update_fields=[
            "state",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "last_error_at",
        ]
    )


def release_mails(
    ids: list[int], until: datetime, reason: str, report: DrainReport
) -> None:
    """Hand claimed, untried mail back without counting an attempt.

    With a ``reason`` it is deferred until ``until``; without one (the batch ran out
    of time) it is simply queued again.
    """
    now = timezone.now()
    mail_state = Mail.State.DEFERRED if reason else Mail.State.QUEUED
    rcpt_state = Rcpt.State.DEFERRED if reason else Rcpt.State.QUEUED
    mail_fields: dict = {"last_error": reason[:2000], "last_error_at": now}
    with transaction.atomic():
        Mail.objects.filter(pk__in=ids, state=Mail.State.SENDING).update(
            state=mail_state,
            next_attempt_at=until,
            attempts=F("attempts") - 1,
            **(mail_fields if reason else {}),
        )
        Rcpt.objects.filter(mail_id__in=ids, state=Rcpt.State.SENDING).update(
            state=rcpt_state,
            updated_at=now,
            **({"last_error": reason} if reason else {}),
        )
    report.released += len(ids)
