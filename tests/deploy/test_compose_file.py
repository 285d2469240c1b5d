"""docker-compose.yml runs scripts/service, the commands the smoke test runs, and
the Dockerfile runs them as a non-root user: the compose file cannot drift from
what is tested."""

from __future__ import annotations

import re

import yaml

from tests.servers.stack import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_app_services_run_scripts_service():
    """web, worker and beat are `scripts/service NAME`, healthchecked by
    `scripts/service health NAME`."""
    for name in ("web", "worker", "beat"):
        service = COMPOSE["services"][name]
        assert service["command"] == ["scripts/service", name]
        assert service["healthcheck"]["test"] == [
            "CMD",
            "scripts/service",
            "health",
            name,
        ]
        assert service["environment"]["DEBUG"] == "false"


def test_service_script_execs_every_server():
    """Each server replaces the shell (exec), so compose's SIGTERM reaches it."""
    text = (ROOT / "scripts" / "service").read_text()
    for server in (
        "-m gunicorn",
        "-m celery -A knowlix worker",
        "-m celery -A knowlix beat",
    ):
        line = next(line for line in text.splitlines() if server in line)
        assert re.match(r"\s*exec ", line), line


def test_image_runs_as_a_user():
    """The Dockerfile's last USER is not root, and its default command is the web service."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines[-1] == 'CMD ["scripts/service", "web"]'


def test_gunicorn_port_is_published_on_loopback_only():
    """Only the TLS proxy on the host reaches gunicorn."""
    assert COMPOSE["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]
