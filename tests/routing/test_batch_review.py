"""More mailboxes routed both ways (``routing.batch`` and one by one) that must
write the same: senders who are users, unverified senders, loop limits."""

from __future__ import annotations

import pytest
from django.db import transaction

from knowlix import params
from routing.batch import route_incoming_messages
from routing.matching import TRUSTED_AUTHSERV_IDS
from routing.services import route_incoming_message
from tests.routing.test_batch import Server, outcomes, snapshot


def mail(
    n: int,
    *,
    sender: str,
    auth: str = "",
    to: str = "support@mailbox.example",
    cc: str = "",
) -> bytes:
    """A new request; ``auth``: the trusted server's DMARC result, if any."""
    headers = (
        f"Authentication-Results: mx.example.com; dmarc={auth}\r\n" if auth else ""
    )
    headers += f"From: Sender {n} <{sender}>\r\nTo: {to}\r\n"
    headers += f"Cc: {cc}\r\n" if cc else ""
    return (
        f"{headers}Subject: Request {n}\r\nMessage-ID: <rq-{n}@client.example>\r\n"
        f"Content-Type: text/plain\r\n\r\nRequest {n}\r\n"
    ).encode()


def route_both_ways(raws: list[bytes]) -> tuple[list, list, dict, dict]:
    """Route ``raws`` one by one, then in bulk, from the same state (rolled back)."""
    server = Server()
    with transaction.atomic():
        one_by_one = [
            route_incoming_message(raw=raw, source="imap:1", server=server)
            for raw in raws
        ]
        expected = snapshot()
        transaction.set_rollback(True)
    with transaction.atomic():
        batched = route_incoming_messages(raws=raws, source="imap:1", server=server)
        got = snapshot()
        transaction.set_rollback(True)
    return outcomes(batched), outcomes(one_by_one), got, expected


@pytest.fixture
def trusted(aliases):
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")


def test_unverified_mail_from_a_users_address_is_loop_limited(trusted, make_user):
    """A user's verified mail counts towards the address's loop limit, and mail
    from that address that fails authentication is no user's: it is refused once
    the limit is reached, in bulk as one by one."""
    params.set_param(params.LOOP_LIMIT, "2")
    make_user("dave", email="dave@partner.example")
    raws = [
        mail(1, sender="dave@partner.example", auth="pass"),
        mail(2, sender="dave@partner.example", auth="pass"),
        mail(3, sender="dave@partner.example", auth="fail"),
    ]
    batched, one_by_one, got, expected = route_both_ways(raws)
    assert [o for o, _r, _routes in one_by_one] == ["routed", "routed", "refused"]
    assert batched == one_by_one
    assert got == expected
