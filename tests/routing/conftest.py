"""Routing fixtures: the catch-all domain, module aliases, .eml templates."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from knowlix import params

DATA = Path(__file__).resolve().parent.parent / "data"
MODULE_ALIASES = importlib.import_module(
    "routing.migrations.0003_module_aliases"
).MODULE_ALIASES


def ensure_module_aliases() -> list:
    """The module aliases the migration creates (again, after a test that flushed
    the database), as the migration does: an existing one is left as it is."""
    from django.contrib.contenttypes.models import ContentType

    from routing.models import Alias

    aliases = []
    for name, model in MODULE_ALIASES.items():
        content_type = ContentType.objects.get_by_natural_key("knowlix", model)
        alias, _created = Alias.objects.get_or_create(
            name=name, defaults={"content_type": content_type}
        )
        aliases.append(alias)
    return aliases


@pytest.fixture(autouse=True)
def fresh_params():
    """Parameters are cached per process: start and end each test from the DB."""
    params.clear_cache()
    yield
    params.clear_cache()


@pytest.fixture
def catchall(db) -> str:
    params.set_param(params.CATCHALL_DOMAIN, "example.com")
    return "example.com"


@pytest.fixture
def aliases(catchall, groups):
    """helpdesk@, sales@, expenses@, jobs@ (the module aliases of every install)."""
    return {alias.name: alias for alias in ensure_module_aliases()}


def eml(name: str, **values: object) -> bytes:
    """A .eml file from tests/data/routing with its {{PLACEHOLDERS}} filled."""
    text = (DATA / "routing" / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key.upper() + "}}", str(value))
    assert "{{" not in text, f"unfilled placeholder in {name}"
    return text.replace("\n", "\r\n").encode("utf-8")


@pytest.fixture
def route():
    """Route bytes as the MTA pipe would."""
    from routing.services import route_incoming_message

    def run(raw: bytes, **kw):
        kw.setdefault("source", "test")
        return route_incoming_message(raw=raw, **kw)

    return run
