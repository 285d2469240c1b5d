"""The shared test CA fixture."""

from __future__ import annotations

import pytest

from tests.servers.tls import TestCA, make_test_ca


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A CA plus a server certificate for 127.0.0.1/localhost, made once per run."""
    return make_test_ca(tmp_path_factory.mktemp("ca"))
