"""Pick the server afresh before each attempt (and before a manual *Retry*).

A mail records the server chosen when it was queued; by its next attempt custom
servers may be switched off, its server deactivated, deleted, or another one may
match its From better. :func:`reselect_servers` applies the rules of
``mailservers.selection`` again to the mail that is due, by distinct (From, server)
group, so it reads a few rows however long the queue is. When the new choice
sends another From (the default server only sends for its own domain), the header
block of the stored bytes is rewritten (From, Reply-To) and signed again; the body
is untouched. Call outside any transaction, before claiming.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dnscheck.signing import dkim_sign
from knowlix import params
from mailservers import headers, mime
from mailservers.models import OutgoingMail, OutgoingServer
from mailservers.selection import Selection, choose_server

logger = logging.getLogger(__name__)
Mail = OutgoingMail
_REPLACED = (b"from:", b"reply-to:", b"dkim-signature:")


def _servers() -> list[OutgoingServer]:
    if not params.get_bool_param(params.USE_CUSTOM_SERVERS):
        return []
    return list(OutgoingServer.objects.filter(is_active=True))


def reselect_servers(*, mail_ids: Sequence[int] | None = None) -> int:
    """Choose the server of every due mail again (or of ``mail_ids``); returns how
    many mails changed server or From."""
    due = Mail.objects.filter(state__in=Mail.PENDING)
    if mail_ids is not None:
        due = due.filter(pk__in=list(mail_ids))
    else:
        due = due.filter(next_attempt_at__lte=timezone.now())
    groups = (
        due.order_by()
        .values_list("from_address", "original_from", "server_id")
        .distinct()
    )
    servers = _servers()
    default_from = params.default_from_address()
    changed = 0
    for from_address, original_from, server_id in list(groups):
        wanted = original_from or from_address
        selection = choose_server(
            from_address=wanted, servers=servers, default_from=default_from
        )
        new_server_id = selection.server.pk if selection.server else None
        if new_server_id == server_id and selection.from_address == from_address:
            continue
        group = due.filter(
            from_address=from_address,
            original_from=original_from,
            server_id=server_id,
        )
        same_from = selection.from_address == from_address
        changed += _apply(group, selection, same_from=same_from)
    return changed


def _apply(
    group: QuerySet[OutgoingMail], selection: Selection, *, same_from: bool
) -> int:
    """Record the new choice on a group of mails (their bytes too, if From changes)."""
    fields = {
        "server": selection.server,
        "server_label": str(selection.server or _("Default server")),
        "selection_reason": (_("chosen again: %(why)s") % {"why": selection.reason})[
            :200
        ],
        "from_address": selection.from_address,
        "original_from": selection.original_from,
    }
    if same_from:
        return int(group.update(**fields))
    count = 0
    for pk in list(group.values_list("pk", flat=True)):
        with transaction.atomic():
            mail = (
                Mail.objects.select_for_update()
                .filter(pk=pk, state__in=Mail.PENDING)
                .first()
            )
            if mail is None:  # claimed meanwhile: this attempt keeps its choice
                continue
            if not mail.reply_to and selection.original_from:  # replies go home
                original = mime.make_address(mail.from_name, selection.original_from)
                mail.reply_to = str(original)[:1000]
            raw = rewrite_sender(
                bytes(mail.raw),
                from_addr=(mail.from_name, selection.from_address),
                reply_to=mail.reply_to,
            )
            raw = dkim_sign(raw, selection.from_address.rpartition("@")[2])
            for name, value in fields.items():
                setattr(mail, name, value)
            mail.raw, mail.size = raw, len(raw)
            mail.save(update_fields=[*fields, "raw", "size", "reply_to"])
            count += 1
    return count


def rewrite_sender(
    raw: bytes, *, from_addr: tuple[str, str], reply_to: str = ""
) -> bytes:
    """``raw`` with a new From (and Reply-To), its old DKIM signature dropped.

    Only the header block is touched; the new lines are written by
    ``mailservers.headers`` from checked addresses, as ``mime.build_message`` does."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the line above
            if not skipping:
                kept.append(line)
            continue
        skipping = line.lower().startswith(_REPLACED)
        if not skipping:
            kept.append(line)
    block = headers.HeaderBlock()
    block.mailboxes("From", [headers.make_mailbox(*from_addr)])
    if reply_to:
        address = mime.parse_address(reply_to)
        block.mailboxes(
            "Reply-To", [headers.make_mailbox(address.display_name, address.addr_spec)]
        )
    return block.as_bytes() + b"\r\n".join(kept) + sep + body
