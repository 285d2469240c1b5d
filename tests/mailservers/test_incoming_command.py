"""``manage.py fetch_mail``: polls now, reports each server, fails if one failed."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from mailservers.models import IncomingServer
from tests.servers.dovecot_fixtures import DovecotUser, make_mail


def test_fetch_mail_one_server(dovecot_user, make_incoming_server, stub_routing):
    """``--server ID`` polls that server and prints what it stored."""
    dovecot_user.append_many([make_mail(i) for i in range(2)])
    server = make_incoming_server(dovecot_user, state="draft")
    out = io.StringIO()
    call_command("fetch_mail", "--server", str(server.pk), stdout=out)
    assert "2 stored" in out.getvalue()
    assert stub_routing.count() == 2


def test_fetch_mail_all_goes_on_after_a_failure(
    dovecot_user, make_incoming_server, stub_routing
):
    """A failing server is reported, the others are polled, the exit is an error."""
    other = DovecotUser(dovecot_user.server, f"{dovecot_user.username}-b", "pw-b")
    other.server.add_user(other.username, other.password)
    other.append(make_mail(1))
    bad = make_incoming_server(dovecot_user, name="aaa-bad")
    IncomingServer.objects.filter(pk=bad.pk).update(password="")
    make_incoming_server(other, name="zzz-good")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 server"):
        call_command("fetch_mail", "--all", stdout=io.StringIO(), stderr=err)
    assert "aaa-bad: FAILED" in err.getvalue()
    assert stub_routing.count() == 1
