"""Drain the outgoing queue: claim due mail, send it, record each recipient's result.

Exactly once: mail is claimed in a short transaction (``SELECT … FOR UPDATE SKIP
LOCKED`` then an UPDATE to *sending*), so no two workers ever hold the same row. A
claim is an ``OutboxClaim`` row naming its process, with a 30-second lease that a
heartbeat thread renews while the batch runs. Progress is written as the SMTP
dialogue goes (``outbox_results.SendProgress``): before a mail's content can reach
the server its place is committed on the claim as the stage reached, only while the
claim is still ours; that commit also stands for the previous mail's 250. When a
claim's lease ends or its owner
is gone, ``recover_stuck_mail`` requeues its untried mail (no attempt used) and fails
as "cannot tell" only the one at stage *data*. A server that cannot be connected to
is marked down (``outbox_health``): its mail waits, attempts untouched, until a probe
succeeds or the queue lifetime ends. Rate limits are counted under the server's row
lock. One SMTP connection per server per batch. Call these outside any transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from knowlix import params
from mailservers.backends.smtp import (
    RecipientResult,
    SendCancelled,
    SmtpConnection,
    SmtpParams,
)
from mailservers.errors import (
    DeliveryError,
    MailServerError,
    PermanentError,
    ServerAuthError,
    ServerConfigError,
    ServerQuotaError,
    UncertainDeliveryError,
)
from mailservers.models import (
    OutboxClaim,
    OutgoingMail,
    OutgoingRecipient,
    OutgoingServer,
)
from mailservers.services import lease_owner, outbox_health
from mailservers.services.heartbeat import Heartbeat
from mailservers.services.oauth import with_fresh_token
from mailservers.services.outbox_results import (
    UNCERTAIN_REASON,
    DrainReport,
    Opening,
    SendProgress,
    expired_reason,
    mark_sending,
    open_ahead,
    queue_lifetime,
    record_delivered_before,
    record_results,
    release_mails,
)
from mailservers.services.reselect import reselect_servers

logger = logging.getLogger(__name__)

Mail, Rcpt = OutgoingMail, OutgoingRecipient
QUOTA_PAUSE = timedelta(hours=1)
# A claim's lease, renewed every HEARTBEAT_SECONDS: a dead worker's claim ends
# within CLAIM_LEASE, and beat's recovery (every 20 s) hands its mail back.
CLAIM_LEASE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 10.0
# Mail in *sending* without any claim row (claimed by an older version): recovered
# after this long.
STUCK_AFTER = timedelta(minutes=15)
# A batch stops taking mail after this long (slow server, big mails) and hands the
# rest back, so it always ends well before STUCK_AFTER would call it crashed.
BATCH_SECONDS = 300.0
BATCH_SIZE = 500
CHUNK_BYTES = 4 * 1024 * 1024  # raw bytes loaded at once: memory stays flat


def smtp_params_for(server: OutgoingServer | None) -> SmtpParams:
    """Connection parameters of a server, or of the default (KNOWLIX_SMTP_URL)."""
    timeout = float(settings.KNOWLIX_SMTP_TIMEOUT)
    ca_file = settings.KNOWLIX_MAIL_CA_FILE
    pipelining = bool(settings.KNOWLIX_SMTP_PIPELINING)
    if server is None:
        if not settings.KNOWLIX_SMTP_URL:
            raise ServerConfigError(_("No default SMTP server: set KNOWLIX_SMTP_URL."))
        return SmtpParams.from_url(
            settings.KNOWLIX_SMTP_URL,
            timeout=timeout,
            ca_file=ca_file,
            pipelining=pipelining,
        )
    uses_oauth = server.auth_method != OutgoingServer.AuthMethod.PASSWORD
    if uses_oauth and server.oauth_grant is None:
        raise ServerAuthError(
            _("%(server)s has no connected account: use “Connect your account”.")
            % {"server": server.name}
        )
    return SmtpParams(  # an OAuth token is set by open_connection
        host=server.host,
        port=server.port,
        security=server.security,
        username=server.username,
        password="" if uses_oauth else server.password,
        timeout=timeout,
        ca_file=ca_file,
        pipelining=pipelining,
    )


def open_connection(conn: SmtpConnection, server: OutgoingServer | None) -> None:
    """Open ``conn``; an OAuth server signs in with its grant's token, refreshed
    and retried once when the provider refuses it (``services.oauth``)."""
    if server is None or server.auth_method == OutgoingServer.AuthMethod.PASSWORD:
        conn.open()
        return

    def attempt(token: Callable[[], str]) -> None:
        conn.params = dataclasses.replace(conn.params, token=token)
        conn.open()

    # smtp_params_for() already refused an OAuth server without a connected account.
    assert server.oauth_grant is not None
    with_fresh_token(server.oauth_grant, attempt)


# --- Claiming ----------------------------------------------------------------------


def _capacity(server: OutgoingServer, now: datetime) -> int | None:
    """Mails the server may still send now (None: no limit); in-flight ones count."""
    remaining = None
    for seconds, limit in server.limits:
        used = Mail.objects.filter(server=server).filter(
            Q(sent_at__gte=now - timedelta(seconds=seconds))
            | Q(state=Mail.State.SENDING)
        )
        left = max(limit - used.count(), 0)
        remaining = left if remaining is None else min(remaining, left)
    return remaining


def _lease_end() -> CombinedExpression:
    """Now plus the claim lease, by the database's clock (workers' clocks may differ)."""
    return CombinedExpression(
        Now(), "+", Value(CLAIM_LEASE), output_field=DateTimeField()
    )


@dataclasses.dataclass
class Claim:
    server: OutgoingServer | None
    ids: list[int]
    token: str = ""
    # Read back by the claim's own UPDATEs: each mail's size, and its recipients
    # (address, VERP token) in id order.
    sizes: dict[int, int] = dataclasses.field(default_factory=dict)
    recipients: dict[int, list[tuple[str, str]]] = dataclasses.field(
        default_factory=dict
    )
    opening: Opening | None = None  # the deliveries' connection, opened ahead


def _claim(*, server_id: int | None, limit: int, only_id: int | None = None) -> Claim:
    """Win up to ``limit`` due mails of one server; they are *sending* on return,
    under a new ``OutboxClaim`` named for this process."""
    now = timezone.now()
    token = uuid.uuid4().hex
    # Not in a caller's transaction: another connection could not see its rows.
    may_open = not connection.in_atomic_block
    opening = None
    try:
        with transaction.atomic():
            server = None
            if server_id is not None:
                server = (
                    OutgoingServer.objects.select_for_update(of=("self",))
                    .select_related("oauth_grant")
                    .filter(pk=server_id)
                    .first()
                )
                if server is None or server.is_paused:
                    return Claim(server, [])
                capacity = _capacity(server, now)
                limit = limit if capacity is None else min(limit, capacity)
            if limit <= 0:
                return Claim(server, [])
            due = Mail.objects.filter(
                server_id=server_id, state__in=Mail.PENDING, next_attempt_at__lte=now
            )
            if only_id is not None:
                due = due.filter(pk=only_id)
            ids = list(
                due.select_for_update(skip_locked=True)
                .order_by("next_attempt_at", "id")
                .values_list("pk", flat=True)[:limit]
            )
            if not ids:
                return Claim(server, [])
            # Opened while the claim's UPDATEs run: ready by the batch's first group.
            opening = open_ahead(token, len(ids)) if may_open else None
            OutboxClaim.objects.create(
                token=token,
                owner=lease_owner.current_owner(),
                lease_until=_lease_end(),
            )
            sizes = _mark_claimed(ids, now, token)
            when = connection.ops.adapt_datetimefield_value(now)
            rows = _execute(
                "UPDATE {rcpt} SET state = %s, updated_at = %s "
                "WHERE state IN (%s, %s) AND mail_id {in_ids} "
                "RETURNING id, mail_id, address, verp_token",
                [Rcpt.State.SENDING, when, *Rcpt.PENDING],
                ids,
            )
    except BaseException:
        if opening is not None:  # the claim failed: nobody will use it
            opening.discard()
        raise
    recipients: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for _pk, mail_id, address, verp in sorted(rows):
        recipients[mail_id].append((address, verp))
    return Claim(server, ids, token, sizes, recipients, opening)


def _execute(sql: str, params: list[object], ids: list[int]) -> list[tuple]:
    """Run ``sql`` with ``{mail}``, ``{rcpt}`` (the tables) and ``{in_ids}`` (``IN``
    the ids, bound after ``params``); its rows. Plain SQL: the ORM takes 5-20 ms to
    build an IN list of 500 ids, as long as sending 5-15 mails (bench/outgoing.py).
    PostgreSQL gets the ids as one array (``= ANY(%s)``): a list of 500 placeholders
    costs psycopg about 4 ms to split and the server as much to parse, per
    statement."""
    q = connection.ops.quote_name
    in_ids, values = _in_ids(ids)
    sql = sql.format(
        mail=q(Mail._meta.db_table), rcpt=q(Rcpt._meta.db_table), in_ids=in_ids
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, cast("list[Any]", [*params, *values]))
        return cursor.fetchall() if cursor.description else []


def _in_ids(ids: list[int]) -> tuple[str, list[object]]:
    """``IN`` these ids, as SQL and one parameter: an array on PostgreSQL, a JSON
    list on SQLite (its json_each)."""
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])", [ids]
    return "IN (SELECT value FROM json_each(%s))", [json.dumps(ids)]


def _renew_claim(token: str) -> bool:
    return OutboxClaim.objects.filter(token=token).update(lease_until=_lease_end()) == 1


def _mark_claimed(ids: list[int], now: datetime, token: str) -> dict[int, int]:
    """One UPDATE: *sending*, no stage yet, one more attempt, the batch's token and
    each mail's place in the sending order (``_send_batch`` sends in ``ids``
    order). Plain SQL: an ORM Case/When of 200 mails costs about 20 ms to build, a
    tenth of the bare SMTP loop's time for them. The ids are one parameter,
    numbered by the database: ``unnest … WITH ORDINALITY`` on PostgreSQL,
    ``json_each`` on SQLite (a CASE of 500 ids cost 10 ms). Returns each mail's
    size."""
    q = connection.ops.quote_name
    table = q(Mail._meta.db_table)
    when = connection.ops.adapt_datetimefield_value(now)
    head = (
        f"UPDATE {table} SET state = %s, claimed_at = %s, attempts = attempts + 1, "
        "claim_token = %s, smtp_stage = '', "
    )
    if connection.vendor == "postgresql":
        sql = (
            f"{head}claim_position = claimed.place - 1 FROM unnest(%s::bigint[]) "
            f"WITH ORDINALITY AS claimed(id, place) WHERE {table}.id = claimed.id "
            f"RETURNING {table}.id, {table}.size"
        )
        params: list[object] = [Mail.State.SENDING, when, token, ids]
    else:  # json_each numbers a JSON list's items from 0
        sql = (
            f"{head}claim_position = claimed.key FROM json_each(%s) AS claimed "
            f"WHERE {table}.id = claimed.value RETURNING {table}.id, {table}.size"
        )
        params = [Mail.State.SENDING, when, token, json.dumps(ids)]
    with connection.cursor() as cursor:
        cursor.execute(sql, cast("list[Any]", params))
        return dict(cursor.fetchall())


def _due_server_ids() -> list[int | None]:
    """Servers with due mail, but those paused or down and not yet to be probed.
    Plain SQL: the ORM spent about as long building this query (a paused server
    excluded through a nullable foreign key) as the database running it, twice a
    drain."""
    q = connection.ops.quote_name
    mail, server = q(Mail._meta.db_table), q(OutgoingServer._meta.db_table)
    now = timezone.now()
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT m.server_id FROM {mail} m LEFT JOIN {server} s "
            "ON s.id = m.server_id WHERE m.state IN (%s, %s) "
            "AND m.next_attempt_at <= %s "
            "AND (s.paused_until IS NULL OR s.paused_until <= %s)",
            [*Mail.PENDING, when, when],
        )
        rows = cursor.fetchall()
    waiting = outbox_health.waiting_keys(now)
    return [i for (i,) in rows if outbox_health.server_key(i) not in waiting]


def _server_paused(
    server: OutgoingServer, exc: ServerQuotaError, ids: list[int], report: DrainReport
) -> None:
    """The provider's sending quota: pause the server; its mail waits untried."""
    now = timezone.now()
    logger.warning("outgoing server %s: %s", server, exc.user_message)
    server.paused_until = now + QUOTA_PAUSE
    server.last_error, server.last_error_at = exc.user_message, now
    server.save(update_fields=["paused_until", "last_error", "last_error_at"])
    release_mails(ids, server.paused_until, exc.user_message, report)


def _server_down(
    server: OutgoingServer | None,
    exc: MailServerError,
    ids: list[int],
    report: DrainReport,
) -> None:
    """The server could not be connected to: it is down, not the mail. The mail
    waits for the probe without using an attempt; the server keeps the reason."""
    if isinstance(exc, ServerQuotaError) and server is not None:
        _server_paused(server, exc, ids, report)
        return
    now = timezone.now()
    logger.warning("outgoing server %s is down: %s", server or "default", exc)
    probe_at = outbox_health.mark_down(server, exc.user_message)
    if server is not None:
        server.last_error, server.last_error_at = exc.user_message, now
        # Our configuration or credentials: someone has to look (probes go on).
        server.needs_attention = isinstance(exc, PermanentError)
        server.save(update_fields=["last_error", "last_error_at", "needs_attention"])
    reason = _(
        "%(server)s could not be reached: %(error)s The mail waits (next try "
        "%(when)s) and goes out by itself when the server is back."
    ) % {
        "server": server or _("The default server"),
        "error": exc.user_message,
        "when": date_format(timezone.localtime(probe_at), "DATETIME_FORMAT"),
    }
    release_mails(ids, probe_at, reason, report)


# --- Sending -----------------------------------------------------------------------


def _chunks(
    ids: list[int], sizes: dict[int, int]
) -> Iterator[tuple[int, str, bytes, bool]]:
    """Yield (mail_id, from_address, raw, needs_smtputf8) in ``ids`` order, a few
    MB of raw at a time (``sizes``: each mail's, from the claim)."""
    chunk: list[int] = []
    total = 0
    for mail_id in ids:
        chunk.append(mail_id)
        total += sizes.get(mail_id, 0)
        if total >= CHUNK_BYTES or mail_id == ids[-1]:
            rows = _execute(
                "SELECT id, from_address, raw, needs_smtputf8 FROM {mail} "
                "WHERE id {in_ids}",
                [],
                chunk,
            )
            by_id = {
                pk: (pk, sender, bytes(raw), bool(u)) for pk, sender, raw, u in rows
            }
            yield from (by_id[i] for i in chunk if i in by_id)
            chunk, total = [], 0


def verp_address(token: str) -> str:
    """``bounce+<token>@<catch-all>``: the envelope sender of one recipient's
    transaction, so its bounce comes home to Knowlix and names it (routing.bounces).
    """
    alias = params.get_param(params.BOUNCE_ALIAS) or "bounce"
    return f"{alias}+{token}@{params.catchall_domain()}"


def _envelopes(
    mail_from: str, recipients: list[tuple[str, str]]
) -> list[tuple[str, list[str]]]:
    """(MAIL FROM, RCPT TOs) of each SMTP transaction of one mail: one per
    recipient with a VERP token; the rows queued before VERP share the From."""
    legacy = [address for address, token in recipients if not token]
    envelopes = [(verp_address(token), [a]) for a, token in recipients if token]
    return envelopes + ([(mail_from, legacy)] if legacy else [])


def _send_mail(
    conn: SmtpConnection,
    envelopes: list[tuple[str, list[str]]],
    raw: bytes,
    *,
    utf8_headers: bool,
    before_data: Callable[[], Callable[[], bool]],
    after_data: Callable[[], None],
) -> dict[str, RecipientResult]:
    """Every transaction of one mail; a failure after some of them raises
    :class:`PartlySent` carrying the results already known."""
    results: dict[str, RecipientResult] = {}
    for sender, rcpts in envelopes:
        try:
            results.update(
                conn.send(
                    mail_from=sender,
                    recipients=rcpts,
                    raw=raw,
                    utf8_headers=utf8_headers,
                    before_data=before_data,
                    after_data=after_data,
                )
            )
        except MailServerError as exc:
            if results:
                raise PartlySent(results, exc) from exc
            raise
    return results


class _Ahead:
    """The batch's mails, one looked at ahead: while the server reads a mail,
    ``prepare_next`` works out the next one's envelopes and has the connection
    check its addresses and dot-stuff its content, so little is left between the
    server's 250 and the next MAIL FROM (bench/outgoing.py). Reads only."""

    Row = tuple[int, str, bytes, bool]

    def __init__(
        self,
        rows: Iterator[Row],
        recipients: dict[int, list[tuple[str, str]]],
        conn: SmtpConnection,
    ) -> None:
        self.rows = rows
        self.recipients = recipients
        self.conn = conn
        self.peeked: list[_Ahead.Row] = []
        self.envelopes: dict[int, list[tuple[str, list[str]]]] = {}
        # Reading ahead failed (the database): raised in its turn, as if read then
        # (a generator that raised is over, so the error must not be lost).
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[Row]:
        while True:
            if self.peeked:
                yield self.peeked.pop()
                continue
            if self.error is not None:
                raise self.error
            row = next(self.rows, None)
            if row is None:
                return
            yield row

    def envelopes_of(self, mail_id: int, mail_from: str) -> list[tuple[str, list[str]]]:
        found = self.envelopes.pop(mail_id, None)
        return found or _envelopes(mail_from, self.recipients.get(mail_id, []))

    def prepare_next(self) -> None:
        """Never raises: what fails here is done again, and fails, in its turn."""
        if not self.peeked and self.error is None:
            try:
                row = next(self.rows, None)
            except Exception as exc:  # noqa: BLE001  (raised by __iter__)
                self.error = exc
                return
            if row is None:
                return
            self.peeked.append(row)
        if not self.peeked:
            return
        try:
            mail_id, mail_from, raw, _utf8 = self.peeked[0]
            if mail_id in self.envelopes:
                return  # a mail of several transactions: prepared once
            envelopes = _envelopes(mail_from, self.recipients.get(mail_id, []))
            addresses = [a for sender, rcpts in envelopes for a in (sender, *rcpts)]
            self.conn.prepare(addresses, raw)
            self.envelopes = {mail_id: envelopes}
        except Exception:  # noqa: BLE001
            logger.debug("preparing the next mail failed", exc_info=True)


class PartlySent(Exception):
    """A mail's later transaction failed after earlier ones got their answers."""

    def __init__(self, results: dict[str, RecipientResult], error: MailServerError):
        super().__init__(error.user_message)
        self.results = results
        self.error = error


def _send_batch(claim: Claim, report: DrainReport) -> None:
    """Send a claim's mail over one connection, under the claim's heartbeat. The
    claim row goes once every mail is settled; after a crash it is what recovery
    finds (its lease no longer renewed)."""
    renew = functools.partial(_renew_claim, claim.token)
    name = f"outbox-claim-{claim.token[:8]}"
    try:
        with Heartbeat(renew, every=HEARTBEAT_SECONDS, name=name) as beat:
            _send_claimed(claim, report, beat)
    finally:
        if claim.opening is not None:  # never used, or closed with the batch
            claim.opening.discard()
    OutboxClaim.objects.filter(token=claim.token).delete()


def _send_claimed(claim: Claim, report: DrainReport, beat: Heartbeat) -> None:
    server, ids, recipients = claim.server, claim.ids, claim.recipients
    try:
        conn = SmtpConnection(smtp_params_for(server))
    except MailServerError as exc:
        _server_down(server, exc, ids, report)
        return
    done: set[int] = set()
    delivered = False
    positions = {mail_id: n for n, mail_id in enumerate(ids)}  # = claim_position
    progress = SendProgress(claim.token, opening=claim.opening)
    started = time.monotonic()
    mails = _Ahead(_chunks(ids, claim.sizes), recipients, conn)
    try:
        for mail_id, mail_from, raw, utf8 in mails:
            if beat.lost:  # recovery took the claim back: touch nothing more
                return
            if done and time.monotonic() - started > BATCH_SECONDS:
                progress.flush()
                rest = [i for i in ids if i not in done]
                release_mails(rest, timezone.now(), "", report)
                break
            if conn.connection is None:
                progress.flush()
                try:
                    open_connection(conn, server)
                except MailServerError as exc:
                    rest = [i for i in ids if i not in done]
                    _server_down(server, exc, rest, report)
                    return
                outbox_health.mark_up(server.pk if server else None)
            done.add(mail_id)
            try:
                results = _send_mail(
                    conn,
                    mails.envelopes_of(mail_id, mail_from),
                    raw,
                    utf8_headers=utf8,
                    before_data=functools.partial(
                        progress.reach_data, positions[mail_id]
                    ),
                    after_data=mails.prepare_next,
                )
            except SendCancelled:  # taken back by recovery: not ours to send
                return
            except PartlySent as partly:  # some recipients' answers are known
                error = partly.error
                delivered = delivered or any(r.ok for r in partly.results.values())
                if isinstance(error, ServerQuotaError):
                    progress.flush()
                    record_results(
                        mail_id,
                        partly.results,
                        report,
                        rest=(Rcpt.State.DEFERRED, error.user_message),
                    )
                    _server_down(
                        server, error, [i for i in ids if i not in done], report
                    )
                    return
                permanent = isinstance(error, DeliveryError) and error.permanent
                state = Rcpt.State.FAILED if permanent else Rcpt.State.DEFERRED
                record_results(
                    mail_id, partly.results, report, rest=(state, error.user_message)
                )
            except ServerQuotaError as exc:
                progress.flush()
                done.discard(mail_id)
                _server_down(server, exc, [i for i in ids if i not in done], report)
                return
            except UncertainDeliveryError as exc:  # the final dot, then silence
                reason = exc.user_message
                mark_sending(mail_id, Rcpt.State.FAILED, reason, report, uncertain=True)
            except DeliveryError as exc:  # refused before sending (bad address)
                state = Rcpt.State.FAILED if exc.permanent else Rcpt.State.DEFERRED
                mark_sending(mail_id, state, exc.user_message, report)
            except MailServerError as exc:  # lost before the end of DATA: retry
                mark_sending(mail_id, Rcpt.State.DEFERRED, exc.user_message, report)
            except Exception as exc:  # a bug must not leave the mail in *sending*
                logger.exception("outgoing mail %s could not be sent", mail_id)
                conn.close()
                reason = _("Knowlix could not send this mail (%(error)s).") % {
                    "error": type(exc).__name__
                }
                mark_sending(mail_id, Rcpt.State.FAILED, reason, report)
            else:
                delivered = delivered or any(r.ok for r in results.values())
                if results and all(r.ok for r in results.values()):
                    progress.note(mail_id)
                    report.sent += 1
                else:
                    record_results(mail_id, results, report)
    finally:
        conn.close()
        progress.close()
    if server is not None and delivered:
        OutgoingServer.objects.filter(pk=server.pk).update(
            last_success_at=timezone.now(), needs_attention=False
        )


# --- Entry points (Celery tasks and the management command call these) -------------


def process_outbox(*, batch_size: int = BATCH_SIZE) -> DrainReport:
    """Send every due mail, server by server, until nothing due is left to claim."""
    report = DrainReport()
    reselect_servers()  # each attempt picks its server afresh
    while True:
        progressed = False
        for server_id in _due_server_ids():
            claim = _claim(server_id=server_id, limit=batch_size)
            if claim.ids:
                progressed = True
                _send_batch(claim, report)
        if not progressed:
            return report


def send_mail_item(*, mail_id: int) -> DrainReport:
    """Send one mail now if it is due and its server may send (the post trigger)."""
    report = DrainReport()
    reselect_servers(mail_ids=[mail_id])
    server_id = Mail.objects.filter(pk=mail_id).values_list("server_id", flat=True)
    if not server_id:
        return report
    key = outbox_health.server_key(server_id[0])
    if key in outbox_health.waiting_keys(timezone.now()):
        return report  # the server is down: the probe (beat) will take it
    claim = _claim(server_id=server_id[0], limit=1, only_id=mail_id)
    if claim.ids:
        _send_batch(claim, report)
    return report


# --- Recovery -----------------------------------------------------------------------


def abandoned_claims() -> set[str]:
    """Claims whose lease ended (by the database's clock) or whose owner is gone."""
    ended = set(
        OutboxClaim.objects.filter(lease_until__lt=Now()).values_list(
            "token", flat=True
        )
    )
    for token, owner in OutboxClaim.objects.exclude(token__in=ended).values_list(
        "token", "owner"
    ):
        if lease_owner.is_dead(owner):
            ended.add(token)
    return ended


def recover_stuck_mail(*, older_than: timedelta = STUCK_AFTER) -> int:
    """Settle the mail of abandoned claims; returns how many mails.

    By the claim's recorded stage (``SendProgress``): mail before the one whose
    content may have left is sent; that one is never re-sent on its own: it fails
    as "cannot tell", and a person checks with the recipient and retries; the rest
    never started and is queued again (no attempt used). Mail *sending* without
    any claim for ``older_than`` (claimed by an older version) counts as "cannot
    tell": nothing says how far it went.
    """
    ended = abandoned_claims()
    cutoff = timezone.now() - older_than
    report = DrainReport()
    uncertain: list[int] = []
    untried: list[int] = []
    with transaction.atomic():
        claims = dict(
            OutboxClaim.objects.select_for_update()
            .filter(token__in=ended)
            .values_list("token", "data_position")
        )
        for token, position in claims.items():
            record_delivered_before(token, position, report)
        live = OutboxClaim.objects.exclude(token__in=claims).values_list("token")
        rows = list(
            Mail.objects.select_for_update(skip_locked=True)
            .filter(state=Mail.State.SENDING)
            .filter(
                Q(claim_token__in=list(claims))
                | (Q(claimed_at__lt=cutoff) & ~Q(claim_token__in=live))
            )
            .values_list("pk", "claim_token", "claim_position")
        )
        for mail_id, token, place in rows:
            if token in claims and (claims[token] is None or place != claims[token]):
                untried.append(mail_id)
            else:
                uncertain.append(mail_id)
        for mail_id in uncertain:
            reason = str(UNCERTAIN_REASON)
            mark_sending(mail_id, Rcpt.State.FAILED, reason, report, uncertain=True)
        release_mails(untried, timezone.now(), "", report)
        OutboxClaim.objects.filter(token__in=claims).delete()
    settled = len(rows) + report.sent
    if settled:
        logger.warning(
            "recovered %d outgoing mail(s) of %d abandoned claim(s): %d sent, %d "
            "queued again, %d may have been sent (failed, to check and retry)",
            settled,
            len(claims),
            report.sent,
            len(untried),
            len(uncertain),
        )
    return settled


def expire_old_mail() -> int:
    """Fail waiting mail older than the queue lifetime, with its last error."""
    cutoff = timezone.now() - queue_lifetime()
    expired = 0
    old = Mail.objects.filter(state__in=Mail.PENDING, created_at__lte=cutoff)
    for mail_id, last_error in old.values_list("pk", "last_error")[:5000]:
        reason = expired_reason(last_error)[:2000]
        now = timezone.now()
        with transaction.atomic():
            won = Mail.objects.filter(pk=mail_id, state__in=Mail.PENDING).update(
                state=Mail.State.FAILED, last_error=reason, last_error_at=now
            )
            Rcpt.objects.filter(mail_id=mail_id, state__in=Rcpt.PENDING).update(
                state=Rcpt.State.FAILED, last_error=reason, updated_at=now
            )
        expired += won
    if expired:
        logger.warning("%d outgoing mail(s) expired in the queue", expired)
    return expired


def sweep_queue() -> tuple[int, int]:
    """Beat's sweep: recover abandoned claims, expire old mail. (recovered, expired)"""
    return recover_stuck_mail(), expire_old_mail()
