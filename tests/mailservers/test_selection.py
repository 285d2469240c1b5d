"""Server selection by From Filter, the From rewrite and the default server."""

from __future__ import annotations

import pytest

from knowlix import params
from mailservers.models import OutgoingServer
from mailservers.selection import choose_server, select_server

DEFAULT_FROM = "notifications@catchall.test"


def server(pk: int, from_filter: str = "", priority: int = 10, **kw) -> OutgoingServer:  # noqa: ANN003
    return OutgoingServer(
        pk=pk,
        name=f"s{pk}",
        host="127.0.0.1",
        from_filter=from_filter,
        priority=priority,
        **kw,
    )


def choose(from_address: str, servers: list[OutgoingServer]):  # noqa: ANN201
    return choose_server(
        from_address=from_address, servers=servers, default_from=DEFAULT_FROM
    )


def test_exact_address_beats_domain():
    """A filter listing the exact address wins over one listing its domain."""
    by_domain = server(1, "example.com", priority=1)
    by_address = server(2, "other.org, Alice@Example.com", priority=50)
    chosen = choose("alice@example.COM", [by_domain, by_address])
    assert chosen.server is by_address
    assert not chosen.is_rewritten
    assert chosen.from_address == "alice@example.COM"


def test_domain_match_keeps_from():
    """A domain in a comma-separated filter matches any address of that domain."""
    sales = server(1, "sales@example.org , example.com")
    chosen = choose("bob@example.com", [sales])
    assert chosen.server is sales
    assert chosen.from_address == "bob@example.com"
    assert "example.com" in chosen.reason


def test_ties_go_by_priority_then_age():
    """Equal matches: the lowest priority number, then the oldest server."""
    later, first, older = server(3, "example.com", 5), server(2, "example.com", 1), None
    assert choose("a@example.com", [later, first]).server is first
    older, newer = server(1, "example.com", 5), server(9, "example.com", 5)
    assert choose("a@example.com", [newer, older]).server is older


def test_inactive_servers_are_ignored():
    """An inactive server never matches."""
    off = server(1, "example.com", is_active=False)
    on = server(2, "example.com", priority=99)
    assert choose("a@example.com", [off, on]).server is on


def test_no_match_rewrites_to_server_of_default_from():
    """Nothing matches the From: it is rewritten and a server for that address used."""
    company = server(1, "company.com")
    notif = server(2, "catchall.test")
    chosen = choose("alice@gmail.com", [company, notif])
    assert chosen.server is notif
    assert chosen.from_address == DEFAULT_FROM
    assert chosen.original_from == "alice@gmail.com"
    assert "rewritten" in chosen.reason


def test_rewritten_address_exact_match_beats_domain():
    """After the rewrite, the exact default address beats its domain."""
    domain = server(1, "catchall.test", priority=1)
    exact = server(2, DEFAULT_FROM, priority=9)
    assert choose("x@elsewhere.net", [domain, exact]).server is exact


def test_unfiltered_server_keeps_from():
    """With no match at all, a server without filter sends with the original From."""
    company = server(1, "company.com")
    relay = server(2, "")
    chosen = choose("alice@gmail.com", [company, relay])
    assert chosen.server is relay
    assert not chosen.is_rewritten
    assert chosen.from_address == "alice@gmail.com"


def test_default_server_rewrites_foreign_from():
    """No usable server: the default server sends, From rewritten to the default."""
    chosen = choose("alice@gmail.com", [server(1, "company.com")])
    assert chosen.server is None
    assert chosen.from_address == DEFAULT_FROM
    assert chosen.original_from == "alice@gmail.com"


def test_default_server_keeps_catchall_domain_from():
    """A From already at the catch-all domain is sent unchanged by the default."""
    chosen = choose("sales@catchall.test", [])
    assert chosen.server is None
    assert not chosen.is_rewritten


def test_default_from_itself_is_not_a_rewrite():
    """Sending as the default address is never reported as rewritten."""
    chosen = choose(DEFAULT_FROM, [server(1, "company.com")])
    assert chosen.from_address == DEFAULT_FROM
    assert chosen.original_from == ""


@pytest.mark.django_db
def test_custom_servers_only_when_enabled():
    """select_server ignores configured servers until mail.use_custom_servers is on."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    params.set_param(params.USE_CUSTOM_SERVERS, "false")
    relay = OutgoingServer.objects.create(name="relay", host="127.0.0.1", port=25)
    assert select_server(from_address="a@company.com").server is None
    params.set_param(params.USE_CUSTOM_SERVERS, "true")
    assert select_server(from_address="a@company.com").server == relay
