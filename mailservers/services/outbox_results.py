"""Write delivery results onto the queue rows (the drain's bookkeeping).

A mail's state always follows from its recipients' states (``finish_mail``):
deferred ones retry with exponential backoff and jitter.
Progress is written as the SMTP dialogue goes (``SendProgress``). Every function here
expects the rows to be claimed (*sending*) by the calling worker, and leaves alone a
mail that recovery took back meanwhile. Mail expires only after the queue lifetime
(``mail.queue.lifetime_days``), never after a number of attempts.
"""

from __future__ import annotations

import logging
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from psycopg import pq

from knowlix import params
from mailservers.backends.smtp import RecipientResult
from mailservers.models import OutboxClaim, OutgoingMail, OutgoingRecipient

logger = logging.getLogger(__name__)
Mail, Rcpt = OutgoingMail, OutgoingRecipient
BACKOFF_BASE = 60.0  # seconds before the first retry; doubles each attempt
BACKOFF_CAP = 4000.0  # Postfix's maximal_backoff_time
UNCERTAIN_REASON = gettext_lazy(
    "The worker stopped while sending this mail: Knowlix cannot tell whether it "
    "left. Check with the recipient, then Retry."
)


def queue_lifetime() -> timedelta:
    """How long a mail may wait in the queue (Postfix's maximal_queue_lifetime)."""
    days = params.get_int_param(params.QUEUE_LIFETIME_DAYS)
    return timedelta(days=days if days > 0 else 5)


def expired_reason(reason: str) -> str:
    days = queue_lifetime().total_seconds() / 86400
    text = _("Expired: still not delivered after %(days)s days in the queue.") % {
        "days": f"{days:g}"
    }
    return f"{text} {_('Last error: %(reason)s') % {'reason': reason}}".strip()


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


STAGE_WAIT_SECONDS = 30  # as long as Django's SQLite busy timeout (settings)


class SendProgress:
    """Writes a batch's progress as the SMTP dialogue goes (the hot path).

    Right before a mail's first command goes out, ``reach_data`` writes its place
    in the sending order on the batch's claim (``OutboxClaim.data_position``) —
    only while the claim is still ours — and the mail's content leaves only once
    that write is committed (``SmtpConnection.send`` waits for it after the
    server's 354). Every other result is committed before the next mail reaches
    that point, except plain deliveries (a 250 for everyone), which are noted in
    memory and written in small groups (``flush_if_due``, before the next mail's
    first command). So after a crash, among the claim's mails still *sending*:
    those before ``data_position`` had their 250 (sent), the one at it is the
    single mail nobody can tell about, those after it never started. One small row
    per mail keeps the hot path cheap (a mail row touches five indexes); it goes
    through the driver's own cursor: Django's wrappers cost more than the
    statement itself (bench/outgoing.py).

    Durability (docs/outgoing.md, "What a commit guarantees"): on PostgreSQL the
    write is an ordinary commit (``synchronous_commit`` as the server has it, on
    by default: flushed to disk before the answer), prepared once per batch and
    sent without waiting (libpq); its answer is read after the server's 354, so
    the flush overlaps the MAIL, RCPT and DATA answers. On SQLite (WAL,
    ``synchronous=NORMAL``, settings) a commit is in the operating system's hands
    when it returns: it survives any process's death, not a power cut.
    """

    FLUSH_EVERY = 50
    FLUSH_SECONDS = 0.5

    def __init__(self, token: str, *, opening: Opening | None = None) -> None:
        """``opening``: the deliveries' connection, opened ahead (``open_ahead``)."""
        self.token = token
        self.pending: list[int] = []  # delivered, not yet written
        self.since = 0.0
        q = connection.ops.quote_name
        mail, rcpt = q(Mail._meta.db_table), q(Rcpt._meta.db_table)
        mark = "?" if connection.vendor == "sqlite" else "%s"  # the driver's style
        self.stage_sql = (
            f"UPDATE {q(OutboxClaim._meta.db_table)} SET data_position = {mark} "
            f"WHERE token = {mark}"
        )
        self.mail_sql = (
            f"UPDATE {mail} SET state = %s, sent_at = %s, last_error = '' "
            "WHERE state = %s AND claim_token = %s AND id IN ({})"
        )
        self.rcpt_sql = (
            f"UPDATE {rcpt} SET state = %s, smtp_code = 250, last_error = '', "
            "updated_at = %s WHERE state = %s AND mail_id IN ({})"
        )
        connection.ensure_connection()
        assert connection.connection is not None
        self.cursor = connection.connection.cursor()  # the driver's own cursor
        self.pgconn = None
        self.impatient = False  # SQLite: busy_timeout is 0 for the stage write
        if connection.vendor == "postgresql":
            # Parsed and planned once per batch, not once per mail (a third of the
            # server's CPU per stage write, measured).
            self.pgconn = connection.connection.pgconn
            self.pg_stage_sql = (
                self.stage_sql.replace("%s", "$1", 1).replace("%s", "$2", 1).encode()
            )
            self.stage_name = f"knowlix_stage_{token[:16]}".encode()
            # The same write with the deliveries due (one statement, one commit):
            # the server does that work while the SMTP server answers.
            self.both_name = f"knowlix_stage_sent_{token[:16]}".encode()
            self.prepared = False  # from the second mail on (a batch of one: never)
            self.first = True
        else:
            connection.execute_wrappers.append(self._patient)
        # Deliveries written off the dialogue's path (_SideWriter, _ThreadWriter),
        # set up when the first group is due, or opened ahead by the claim
        # (``open_ahead``) for a batch big enough to have groups (a batch of one
        # mail, the post trigger, needs neither); never in a caller's
        # transaction, which another connection cannot see.
        self.aside: _SideWriter | _ThreadWriter | None = None
        self.may_go_aside = not connection.in_atomic_block
        # Never given in a caller's transaction (_claim); closed by its owner,
        # the batch (_send_batch), whether used or not.
        self.opening = opening

    def reach_data(self, position: int) -> Callable[[], bool]:
        """Call right before the mail at ``position`` has its first command sent:
        write any due deliveries, then start recording that the mail may now reach
        the server. The returned function (call it before anything else uses the
        database, and before the content leaves) says whether this batch still
        holds its claim. If not (recovered as abandoned), the mail must not be
        sent."""
        if self.pgconn is None:
            if not self.may_go_aside:
                self.flush_if_due()
            held = self._sqlite_stage(position)
            # Right after the stage write: the thread has the write lock to itself
            # until the next mail's MAIL FROM, about 2 ms away.
            if self.is_due() and (aside := self._aside()) is not None:
                aside.write(self.pending)
                self.pending = []
            return lambda: held
        pgconn = self.pgconn
        args = [str(position).encode(), self.token.encode()]
        if self.first:  # a batch of one mail (the post trigger) prepares nothing
            self.first = False
            pgconn.send_query_params(self.pg_stage_sql, args)
        else:
            if not self.prepared:
                _check(pgconn.prepare(self.stage_name, self.pg_stage_sql))
                _check(pgconn.prepare(self.both_name, self._both_sql().encode()))
                self.prepared = True
            if self.is_due() and (aside := self._aside()) is not None:
                aside.write(self.pending)
                self.pending = []
                pgconn.send_query_prepared(self.stage_name, args)
            elif self.is_due():
                when = timezone.now().isoformat().encode()
                ids = ",".join(map(str, self.pending)).encode()
                args += [when, b"{%s}" % ids]
                pgconn.send_query_prepared(self.both_name, args)
                self.pending = []
            else:
                pgconn.send_query_prepared(self.stage_name, args)
        while pgconn.flush():  # a few bytes: sent at once in practice
            pass

        def answer() -> bool:
            result = _read_result(pgconn)
            if result.status == pq.ExecStatus.TUPLES_OK:  # with deliveries
                return result.get_value(0, 0) == b"1"
            return result.command_tuples == 1

        return answer

    def _aside(self) -> _SideWriter | _ThreadWriter | None:
        """The deliveries' own connection (PostgreSQL) or thread (SQLite), set up
        the first time; None where it may not be (a caller's transaction)."""
        if self.aside is None and self.may_go_aside:
            if self.opening is not None:
                self.aside, self.opening = self.opening.result(), None
            elif self.pgconn is not None:
                self.aside = _SideWriter.open(self.token)
            else:
                self.aside = _ThreadWriter(self._write_sent)
            self.may_go_aside = self.aside is not None
        return self.aside

    def _both_sql(self) -> str:
        """PostgreSQL: the stage write ($1, $2) and the deliveries due ($3: when,
        $4: mail ids) in one statement; answers how many claims were updated."""
        stage = self.stage_sql.replace("%s", "$1", 1).replace("%s", "$2", 1)
        return (
            f"WITH stage AS ({stage} RETURNING 1), "
            f"{_deliveries_ctes(when='$3', token='$2', ids='$4')} "
            "SELECT (SELECT count(*) FROM stage), (SELECT count(*) FROM rcpt)"
        )

    def _sqlite_stage(self, position: int) -> bool:
        """SQLite: the write, retried every 0.2 ms while another worker holds the
        file's write lock (its own busy handler first sleeps 1, 2, 5, 10 ms…: as
        long as sending a mail; two workers would then drain slower than one).
        busy_timeout stays 0 between stage writes; ``_patient`` restores it for
        any other statement (two PRAGMAs per mail cost more than the write)."""
        if not self.impatient:
            self.cursor.execute("PRAGMA busy_timeout = 0")
            self.impatient = True
        deadline = time.monotonic() + STAGE_WAIT_SECONDS
        while True:
            try:
                self.cursor.execute(self.stage_sql, [position, self.token])
                return bool(self.cursor.rowcount == 1)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def _patient(
        self,
        execute: Callable[..., object],
        sql: str,
        params: object,
        many: bool,
        context: dict[str, object],
    ) -> object:
        """Django's statements (SQLite) wait for the write lock as usual."""
        self._be_patient()
        return execute(sql, params, many, context)

    def _be_patient(self) -> None:
        if self.impatient:
            self.cursor.execute(f"PRAGMA busy_timeout = {STAGE_WAIT_SECONDS * 1000}")
            self.impatient = False

    def note(self, mail_id: int) -> None:
        """``mail_id`` was accepted by every recipient (written in a group)."""
        if len(self.pending) >= self.FLUSH_EVERY:  # never more unwritten than that
            self.flush()
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append(mail_id)

    def is_due(self) -> bool:
        return len(self.pending) >= self.FLUSH_EVERY or bool(
            self.pending and time.monotonic() - self.since >= self.FLUSH_SECONDS
        )

    def flush_if_due(self) -> None:
        if self.is_due():
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        if self.aside is not None:
            self.aside.write(self.pending)
            self.aside.wait()
        else:
            self._write_sent(self.pending)
        self.pending = []

    def _write_sent(self, ids: list[int]) -> None:
        """The deliveries of ``ids``, in one transaction (on the calling thread's
        connection)."""
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        marks = ", ".join(["%s"] * len(ids))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                self.mail_sql.format(marks),
                [Mail.State.SENT, now, Mail.State.SENDING, self.token, *ids],
            )
            cursor.execute(
                self.rcpt_sql.format(marks),
                [Rcpt.State.SENT, now, Rcpt.State.SENDING, *ids],
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.aside is not None:
                self.aside.close()  # waits: deliveries are in before the claim goes
            if self.pgconn is not None:
                # Skipped on a broken connection or in a failed transaction: the
                # name is this batch's own, so a leftover never clashes.
                idle = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)
                if self.prepared and self.pgconn.transaction_status in idle:
                    self.pgconn.exec_(b"DEALLOCATE " + self.stage_name)
                    self.pgconn.exec_(b"DEALLOCATE " + self.both_name)
            else:
                connection.execute_wrappers.remove(self._patient)
                self._be_patient()
            self.cursor.close()


class _SideWriter:
    """PostgreSQL: a batch's deliveries written on a connection of their own.

    The statement is sent and not waited for: the next mail's stage write (on the
    main connection) no longer waits for 50 mails' rows, indexes and WAL, which
    held the dialogue up for milliseconds every 50 mails. Its answer is read
    before the next one is sent, and by ``close`` before the claim goes. Nothing
    depends on it for exactly-once: recovery tells delivered mail from the stage.
    """

    def __init__(self, conn: psycopg.Connection, token: str) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.token = token.encode()
        self.busy = False
        ctes = _deliveries_ctes(when="$1", token="$2", ids="$3")
        self.sql = f"WITH {ctes} SELECT 1".encode()

    @staticmethod
    def params() -> dict[str, object]:
        """Django's connection parameters for a plain psycopg connection (read on
        the thread that owns Django's connection)."""
        params = connection.get_connection_params()
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        return params

    @classmethod
    def open(
        cls, token: str, params: dict[str, object] | None = None
    ) -> _SideWriter | None:
        """A connection like Django's (same database and role), in autocommit;
        None if it cannot be had (the deliveries then ride on the stage writes)."""
        params = cls.params() if params is None else params
        try:
            conn = psycopg.Connection.connect(**params, autocommit=True)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            logger.warning("no second database connection for deliveries: %s", exc)
            return None
        return cls(conn, token)

    def write(self, ids: list[int]) -> None:
        self.wait()
        when = timezone.now().isoformat().encode()
        array = b"{%s}" % ",".join(map(str, ids)).encode()
        self.pgconn.send_query_params(self.sql, [when, self.token, array])
        while self.pgconn.flush():
            pass
        self.busy = True

    def wait(self) -> None:
        if not self.busy:
            return
        self.busy = False
        _read_result(self.pgconn)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.conn.close()


def open_ahead(token: str, mails: int) -> Opening | None:
    """PostgreSQL: start opening the deliveries' connection of claim ``token``,
    a batch of ``mails`` (None if it will not need one: SQLite, a batch too small
    for a group). The claim calls it once its mails are known, unless it runs in
    a caller's transaction (which another connection cannot see). A connection
    takes ~3 ms and a PostgreSQL process's start: begun while the claim's UPDATEs
    run, when this process waits on the database and a core is free, it is
    neither a stall in the dialogue nor a competitor of its first stage writes."""
    if connection.vendor != "postgresql" or mails <= SendProgress.FLUSH_EVERY:
        return None
    return Opening(token)


class Opening:
    """``_SideWriter.open`` run by a thread of its own: ``result`` waits for it,
    ``discard`` has it closed without waiting (by the thread if still opening;
    closing one already closed is harmless)."""

    def __init__(self, token: str) -> None:
        self.writer: _SideWriter | None = None
        self.discarded = False
        self.lock = threading.Lock()
        params = _SideWriter.params()  # here: Django's connection is per thread

        def run() -> None:
            try:
                writer = _SideWriter.open(token, params)
            except Exception:  # noqa: BLE001  (None: deliveries ride the stage writes)
                logger.exception("opening the deliveries' connection failed")
                return
            with self.lock:
                self.writer = writer
                unwanted = self.discarded
            if unwanted and writer is not None:
                writer.close()

        self.thread = threading.Thread(
            target=run, name="outbox-deliveries-connect", daemon=True
        )
        self.thread.start()

    def result(self) -> _SideWriter | None:
        self.thread.join()
        return self.writer

    def discard(self) -> None:
        with self.lock:
            self.discarded = True
            writer = self.writer
        if writer is not None:
            writer.close()


class _ThreadWriter:
    """SQLite: a batch's deliveries written by a thread of its own (with its own
    connection, closed with it), handed over right after a stage write.

    SQLite has one writer at a time, so this only helps because the drain's own
    writes are one small stage row per mail: between two of them the thread
    writes the group (about 1-3 ms) while the main thread talks SMTP, instead of
    the next mail waiting for it. A collision only makes the stage write wait as
    before. ``write`` waits for the previous group; errors come back from
    ``wait``; ``close`` waits for the last group before the claim goes.
    """

    def __init__(self, write: Callable[[list[int]], None]) -> None:
        self.write_ids = write
        self.jobs: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self.idle = threading.Event()
        self.idle.set()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name="outbox-deliveries", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        try:
            while (ids := self.jobs.get()) is not None:
                try:
                    self.write_ids(ids)
                except BaseException as exc:  # noqa: BLE001  (raised by wait())
                    self.error = exc
                finally:
                    self.idle.set()
        finally:
            connection.close()  # this thread's own connection

    def write(self, ids: list[int]) -> None:
        self.wait()
        self.idle.clear()
        self.jobs.put(list(ids))

    def wait(self) -> None:
        self.idle.wait()
        error, self.error = self.error, None
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.jobs.put(None)
            self.thread.join()


def _deliveries_ctes(*, when: str, token: str, ids: str) -> str:
    """PostgreSQL: ``sent`` and ``rcpt``, the CTEs that write a batch's deliveries
    (mails of claim ``token`` among ``ids``, an array, and their recipients,
    stamped ``when``), given as the statement's placeholders."""
    q = connection.ops.quote_name
    mail, rcpt = q(Mail._meta.db_table), q(Rcpt._meta.db_table)
    return (
        f"sent AS (UPDATE {mail} SET state = '{Mail.State.SENT}', sent_at = {when}, "
        f"last_error = '' WHERE state = '{Mail.State.SENDING}' "
        f"AND claim_token = {token} AND id = ANY({ids}::bigint[]) RETURNING id), "
        f"rcpt AS (UPDATE {rcpt} SET state = '{Rcpt.State.SENT}', "
        f"smtp_code = 250, last_error = '', updated_at = {when} "
        f"WHERE state = '{Rcpt.State.SENDING}' "
        "AND mail_id IN (SELECT id FROM sent) RETURNING 1)"
    )


def _read_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The answer to the statement sent on ``pgconn`` (read to libpq's end of the
    results, so the connection is free again even on an error)."""
    got = pgconn.get_result()
    while pgconn.get_result() is not None:
        pass
    return _check(got)


def _check(result: pq.abc.PGresult | None) -> pq.abc.PGresult:
    """A libpq result, or the server's error as a DatabaseError."""
    if result is None or result.status not in (
        pq.ExecStatus.COMMAND_OK,
        pq.ExecStatus.TUPLES_OK,
    ):
        message = result.error_message if result is not None else b""
        raise DatabaseError(message.decode(errors="replace"))
    return result


def record_delivered_before(
    token: str, position: int | None, report: DrainReport
) -> int:
    """Recovery: an abandoned claim's mails still *sending* before ``position``
    had their 250 (see ``SendProgress``): write them sent. Returns how many."""
    if position is None:
        return 0
    now = timezone.now()
    ids = list(
        Mail.objects.filter(
            claim_token=token, state=Mail.State.SENDING, claim_position__lt=position
        ).values_list("pk", flat=True)
    )
    Mail.objects.filter(pk__in=ids).update(
        state=Mail.State.SENT, sent_at=now, last_error=""
    )
    Rcpt.objects.filter(mail_id__in=ids, state=Rcpt.State.SENDING).update(
        state=Rcpt.State.SENT, smtp_code=250, last_error="", updated_at=now
    )
    report.sent += len(ids)
    return len(ids)


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
        if not Mail.objects.filter(pk=mail_id, state=Mail.State.SENDING).exists():
            return  # taken back by recovery meanwhile
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


def mark_sending(
    mail_id: int,
    state: str,
    reason: str,
    report: DrainReport,
    *,
    uncertain: bool = False,
) -> None:
    """Every recipient still *sending* becomes ``state`` with ``reason``."""
    with transaction.atomic():
        Rcpt.objects.filter(mail_id=mail_id, state=Rcpt.State.SENDING).update(
            state=state, last_error=reason, updated_at=timezone.now()
        )
        finish_mail(mail_id, reason, report, uncertain=uncertain)


def finish_mail(
    mail_id: int, reason: str, report: DrainReport, *, uncertain: bool = False
) -> None:
    """Derive the mail's state from its recipients (inside the caller's transaction).

    A mail recovery took back meanwhile (no longer *sending*) is left alone."""
    now = timezone.now()
    mail = Mail.objects.select_for_update().defer("raw").get(pk=mail_id)
    if mail.state != Mail.State.SENDING:
        return
    states = set(mail.recipients.values_list("state", flat=True))
    retry_at = now + timedelta(seconds=backoff_seconds(mail.attempts))
    if Rcpt.State.DEFERRED in states and retry_at >= mail.created_at + queue_lifetime():
        reason = expired_reason(reason)
        mail.recipients.filter(state=Rcpt.State.DEFERRED).update(
            state=Rcpt.State.FAILED, last_error=reason, updated_at=now
        )
        states = (states - {Rcpt.State.DEFERRED}) | {Rcpt.State.FAILED}
    if Rcpt.State.DEFERRED in states:
        mail.state = Mail.State.DEFERRED
        mail.next_attempt_at = retry_at
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
    mail.uncertain = uncertain and mail.state == Mail.State.FAILED
    if mail.uncertain:
        mail.smtp_stage = Mail.Stage.DATA
    mail.last_error = reason[:2000]
    mail.last_error_at = now if reason else mail.last_error_at
    mail.save(
        update_fields=[
            "state",
            "next_attempt_at",
            "sent_at",
            "uncertain",
            "smtp_stage",
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
