"""pytest fixtures for the local OAuth2 authorization server (``oauth_server``).

The server runs once per test session; each test gets it reset, with two registered
clients (Outlook and Gmail) and Knowlix's settings pointed at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.oauth import GOOGLE_AUTH_PATH, GOOGLE_TOKEN_PATH, OAuthServer
from tests.servers.tls import TestCA

OUTLOOK_CLIENT = ("outlook-client-id", "outlook-secret~with+odd/chars")
GMAIL_CLIENT = ("gmail-client-id.apps.googleusercontent.com", "gmail-secret-123")


@pytest.fixture(scope="session")
def _oauth_server_session(test_ca: TestCA) -> Iterator[OAuthServer]:
    server = OAuthServer(test_ca)
    server.start()  # raises if it cannot bind: never skip
    yield server
    server.stop()


@pytest.fixture
def oauth_server(_oauth_server_session: OAuthServer, settings, test_ca: TestCA):
    """The local provider, reset, with Knowlix's OAuth endpoints pointed at it."""
    from knowlix import params

    params.clear_cache()  # client registrations of an earlier test were rolled back
    server = _oauth_server_session
    server.reset()
    server.register_client(*OUTLOOK_CLIENT)
    server.register_client(*GMAIL_CLIENT)
    settings.KNOWLIX_MICROSOFT_AUTHORITY = server.base_url
    settings.KNOWLIX_GOOGLE_AUTH_URI = server.base_url + GOOGLE_AUTH_PATH
    settings.KNOWLIX_GOOGLE_TOKEN_URI = server.base_url + GOOGLE_TOKEN_PATH
    settings.KNOWLIX_OAUTH_CA_BUNDLE = str(test_ca.ca_path)
    return server
