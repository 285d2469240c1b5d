"""The local mail catcher (mailservers.mailcatcher), as on a new installation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailservers.mailcatcher import start_mailcatcher
from tests.servers.net import HOST, free_port


@pytest.fixture
def mailcatcher(settings) -> Iterator[int]:  # noqa: ANN001
    """The catcher on a free loopback port, and the default server pointed at it."""
    port = free_port()
    controller = start_mailcatcher(HOST, port)
    settings.KNOWLIX_SMTP_URL = f"smtp://{HOST}:{port}"
    yield port
    controller.stop()
