"""A fetched group is stored together (``_store_group``): the ledger says what
storing each message alone says."""

from __future__ import annotations

from mailservers.models import FetchedMessage
from mailservers.services import incoming as service
from routing.models import InboundMail
from tests.servers.dovecot_fixtures import make_mail


def test_a_copy_in_the_same_pop3_group_is_recorded_as_known(
    dovecot_user, make_incoming_server
):
    """The same message twice in a POP3 maildrop, fetched in one group: the second
    copy is recorded as already stored, as when each message is stored alone."""
    dovecot_user.append_many([make_mail(0), make_mail(0), make_mail(1)])
    server = make_incoming_server(dovecot_user, kind="pop3")
    result = service.poll_incoming_server(server=server)
    assert (result.stored, result.known) == (2, 1)
    states = FetchedMessage.objects.order_by("pk").values_list("state", flat=True)
    assert list(states) == ["stored", "known", "stored"]
    assert InboundMail.objects.count() == 2
