"""The one entry point, by transaction: outside one (an MTA pipe) the raw bytes are
committed before routing starts; inside the caller's (the pollers) everything is
written with the caller's commit, or not at all."""

from __future__ import annotations

import pytest
from django.db import transaction

from knowlix.models import Ticket
from routing import writes
from routing.models import InboundMail, UnprocessedMail
from routing.services import route_incoming_messages
from tests.routing.conftest import eml


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_bytes_are_stored_before_routing(
    aliases, monkeypatch
):
    """Routing that fails after storing leaves the committed row quarantined."""
    raw = eml("new_ticket.eml")
    seen = []

    def broken(posts):
        seen.append(InboundMail.objects.get().outcome)  # stored, not yet routed
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "post_messages", broken)
    [result] = route_incoming_messages(raws=[raw], source="mta")
    assert seen == ["received"]
    assert result.outcome == "quarantined"
    assert InboundMail.objects.get().outcome == "quarantined"
    assert "disk full" in UnprocessedMail.objects.get().detail
    assert not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_routed_row_is_finished(aliases):
    """The stored row gets its outcome and routes once routed."""
    [result] = route_incoming_messages(raws=[eml("new_ticket.eml")], source="mta")
    inbound = InboundMail.objects.get()
    assert (inbound.outcome, inbound.routes[0]["action"]) == ("routed", "created")
    assert result.inbound_id == inbound.pk
    assert inbound.routes[0]["record"] == f"knowlix.ticket:{Ticket.objects.get().pk}"


def test_inside_a_transaction_nothing_is_stored_without_its_commit(aliases):
    """Rolled back by the caller (a poller whose ledger failed), nothing remains."""
    raws = [eml("new_ticket.eml"), eml("to_alias.eml", n=1, to="sales@example.com",
            subject="Hi", **{"from": "x@customer.example"})]  # fmt: skip
    with transaction.atomic():
        results = route_incoming_messages(raws=raws, source="imap:1")
        assert [r.outcome for r in results] == ["routed", "routed"]
        assert InboundMail.objects.count() == 2
        transaction.set_rollback(True)
    assert not InboundMail.objects.exists() and not Ticket.objects.exists()
