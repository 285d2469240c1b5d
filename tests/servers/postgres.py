"""A PostgreSQL database of the test's own, on the machine's server or on one we start.

``DATABASE_URL`` naming PostgreSQL (CI), else ``postgres@127.0.0.1:5432`` when it
answers, gives the server; on a machine without one (a fresh checkout), Debian's
binaries (package ``postgresql``, installed by scripts/install-test-packages) start a
throw-away cluster in a temp dir on a free port (``initdb``, trust auth, as the
``postgres`` user when we are root). ``KNOWLIX_TEST_POSTGRES=own`` forces the latter.
Either way the test gets a fresh database, dropped at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

import psycopg

from tests.servers.net import HOST, free_port

MACHINE_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _bindir() -> str:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]),
    )
    if not found:
        raise RuntimeError(
            "No PostgreSQL server here and no initdb to start one: install Debian's "
            "postgresql package (bash scripts/install-test-packages)"
        )
    return os.path.dirname(found[-1])


class OwnCluster:
    """A cluster in a temp dir; ``stop()`` removes it."""

    def __init__(self) -> None:
        bindir = _bindir()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="knowlix-pg-")
        prefix: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        subprocess.run(
            [*prefix, f"{bindir}/initdb", "-D", data, "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.proc = subprocess.Popen(
            [*prefix, f"{bindir}/postgres", "-D", data, "-p", str(self.port),
             "-k", self.dir, "-c", f"listen_addresses={HOST}", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"postgres://postgres@{HOST}:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while not _answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("our PostgreSQL did not start within 30 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # "smart" shutdown, then wait
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresDatabase:
    """A fresh database ``knowlix_test_<random>``; ``url`` is for DATABASE_URL."""

    def __init__(self) -> None:
        self.cluster: OwnCluster | None = None
        configured = os.environ.get("DATABASE_URL", "")
        if os.environ.get("KNOWLIX_TEST_POSTGRES") == "own":
            server = ""
        elif configured.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(configured)
            server = parts._replace(path="/postgres").geturl()
        else:
            server = MACHINE_URL if _answers(MACHINE_URL) else ""
        if not server:
            self.cluster = OwnCluster()
            server = self.cluster.url
        self.server_url = server
        self.name = f"knowlix_test_{secrets.token_hex(4)}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlsplit(server)._replace(path=f"/{self.name}").geturl()

    def drop(self) -> None:
        try:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            if self.cluster is not None:
                self.cluster.stop()
