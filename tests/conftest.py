"""Shared fixtures: personas, records and the real loopback servers."""

from __future__ import annotations

pytest_plugins = [
    "tests.servers.tls_fixtures",
    "tests.servers.smtp_fixtures",
    "tests.servers.dovecot_fixtures",
    "tests.servers.dns_fixtures",
    "tests.servers.oauth_fixtures",
    "tests.servers.celery_fixtures",
    "tests.servers.browser_fixtures",
]
