"""Helpers for the dnscheck tests: run the pure check against the loopback server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dnscheck.checks import CheckConfig, check_domain
from dnscheck.lookup import make_resolver
from dnscheck.report import DomainReport
from tests.servers.dns import LoopbackDnsServer
from tests.servers.dns_fixtures import (
    DKIM_SELECTOR,
    DKIM_TARGET_DOMAIN,
    SPF_INCLUDE,
    TestKey,
)


@pytest.fixture
def run_check(
    dns_server: LoopbackDnsServer, knowlix_dns: TestKey
) -> Callable[..., DomainReport]:
    """check_domain(domain) against the loopback server, with Knowlix's test key."""

    def run(domain: str, *, public_key: str | None = knowlix_dns.public_b64):
        config = CheckConfig(
            spf_include=SPF_INCLUDE,
            dkim_selector=DKIM_SELECTOR,
            dkim_target_domain=DKIM_TARGET_DOMAIN,
            dkim_public_key=public_key,
        )
        return check_domain(domain, make_resolver([dns_server.nameserver], 1.0), config)

    return run


@pytest.fixture
def staff_admin(make_user):
    """An admin who may open Settings (staff) but holds no model permission."""
    return make_user("staffadmin", group=None, is_staff=True)
