"""A real Dovecot (IMAP, IMAPS, POP3, POP3S) on 127.0.0.1, from a config we write.

Everything lives in a private temp dir: base_dir/state_dir, a passwd-file of users and
their Maildirs. TLS uses the shared test CA. Login penalties are switched off
(``auth_failure_delay = 0`` and the anvil penalty socket moved away) so negative tests
stay quick. Mail is delivered with IMAP APPEND, like a real client would.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from tests.servers.net import free_port
from tests.servers.tls import TestCA

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HOST = "127.0.0.1"


class DovecotError(RuntimeError):
    """Dovecot could not be started (missing binary, bad config, port in use)."""


def _mail_ids() -> tuple[int, int, str]:
    """(uid, gid, name) that mail processes run as: Debian's ``mail`` under root."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("mail")
        return entry.pw_uid, entry.pw_gid, "mail"
    entry = pwd.getpwuid(os.geteuid())
    return entry.pw_uid, entry.pw_gid, entry.pw_name


class DovecotServer:
    """One Dovecot instance; ``start()`` raises :class:`DovecotError` if it can't run.

    ``oauth2_introspection_url`` adds an ``oauth2`` passdb (XOAUTH2 and OAUTHBEARER)
    that checks bearer tokens against an RFC 7662 endpoint (``introspection_mode =
    post``); the userdb still comes from the passwd-file, so add the user first.
    """

    def __init__(
        self,
        ca: TestCA,
        *,
        directory: Path | None = None,  # its parents must be world-traversable
        oauth2_introspection_url: str | None = None,
    ) -> None:
        if not Path(DOVECOT).exists():
            raise DovecotError(
                "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"
            )
        self.ca = ca
        self.dir = Path(directory or tempfile.mkdtemp(prefix="knowlix-dovecot-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)  # login/mail processes run as other users
        self.oauth2_introspection_url = oauth2_introspection_url
        self.host = HOST
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.pop3_port, self.pop3s_port = free_port(), free_port()
        self.users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._uid, self._gid, self._mail_user = _mail_ids()
        self.home_root = self.dir / "home"
        self.home_root.mkdir(exist_ok=True)
        os.chown(self.home_root, self._uid, self._gid)
        # One passwd-file per user: Dovecot re-reads a changed file at most once a
        # second, but opens a new path at once, so a fresh user can log in right away.
        self.passwd_dir = self.dir / "passwd.d"
        self.passwd_dir.mkdir(exist_ok=True)
        self.log_path = self.dir / "dovecot.log"
        self.config_path = self.dir / "dovecot.conf"
        self._write_config()

    # -- config ----------------------------------------------------------------
    def _write_config(self) -> None:
        run_dir, state_dir = self.dir / "run", self.dir / "state"
        state_dir.mkdir(exist_ok=True)
        mechanisms = "plain login"
        oauth_passdb = ""
        if self.oauth2_introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            oauth_conf = self.dir / "oauth2.conf.ext"
            oauth_conf.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection_url}\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth_passdb = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {oauth_conf}\n}}\n"
            )
        internal = ""
        if os.geteuid() != 0:
            internal = (
                f"default_login_user = {self._mail_user}\n"
                f"default_internal_user = {self._mail_user}\n"
            )
        self.config_path.write_text(
            f"""# Written by tests/servers/dovecot.py
instance_name = knowlix-test-{self.imap_port}
base_dir = {run_dir}
state_dir = {state_dir}
listen = {HOST}
protocols = imap pop3
log_path = {self.log_path}
{internal}auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_verbose = yes
disable_plaintext_auth = no
ssl = yes
ssl_cert = <{self.ca.cert_path}
ssl_key = <{self.ca.key_path}
ssl_min_protocol = TLSv1.2
mail_location = maildir:~/Maildir
mail_uid = {self._uid}
mail_gid = {self._gid}
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 1000
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
imap_max_line_length = 10M
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
  default_fields = uid={self._uid} gid={self._gid} home={self.home_root}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  # auth looks for "anvil-auth-penalty"; moving it disables the login penalty.
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-disabled
  }}
}}
"""
        )

    # -- lifecycle ---------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running:
            return
        self._proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = (
                    self._proc.stdout.read().decode(errors="replace")
                    if self._proc.stdout
                    else ""
                )
                raise DovecotError(f"dovecot exited: {out}\n{self.log_tail()}")
            if all(self._port_open(p) for p in self.ports):
                return
            time.sleep(0.05)
        self.stop()
        raise DovecotError(f"dovecot did not listen in time\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the whole process group (master, login and mail processes)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while (
            any(self._port_open(p) for p in self.ports) and time.monotonic() < deadline
        ):
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def ports(self) -> tuple[int, int, int, int]:
        return self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port

    def _port_open(self, port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(
                self.log_path.read_text(errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return ""

    # -- users and mail -------------------------------------------------------------
    def add_user(self, username: str, password: str) -> None:
        """Add a user (or change its password, which takes a second to be seen)."""
        changed = username in self.users
        self.users[username] = password
        path = self.passwd_dir / username
        tmp = self.passwd_dir / f".{username}.tmp"
        tmp.write_text(f"{username}:{{PLAIN}}{password}::::::\n")
        tmp.chmod(0o644)
        tmp.replace(path)
        if changed:
            time.sleep(1.1)  # passwd-file re-syncs at most once per second

    def imap_login(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(HOST, self.imap_port, timeout=30)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver one message with IMAP APPEND (creating the folder if needed)."""
        self.append_many(user, [raw], folder)

    def append_many(
        self, user: str, messages: Iterable[bytes], folder: str = "INBOX"
    ) -> int:
        """Deliver many messages over one connection, pipelined with LITERAL+ (RFC 7888)
        so thousands take seconds; returns how many were stored."""
        if folder.upper() != "INBOX":
            self.create_folder(user, folder)
        quoted = '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        with socket.create_connection((HOST, self.imap_port), timeout=60) as sock:
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            password = self.users[user].replace("\\", "\\\\").replace('"', '\\"')
            sock.sendall(f'L LOGIN "{user}" "{password}"\r\n'.encode())
            self._read_tagged(reader, b"L")
            count, batch, tag = 0, [], 0
            for raw in messages:
                batch.append(b" {%d+}\r\n%s" % (len(raw), raw))
                count += 1
                if len(batch) == 200:
                    tag = self._multiappend(sock, reader, quoted, batch, tag)
                    batch = []
            if batch:
                self._multiappend(sock, reader, quoted, batch, tag)
            sock.sendall(b"Z LOGOUT\r\n")
        return count

    def _multiappend(
        self, sock: socket.socket, reader, folder: str, batch, tag: int
    ) -> int:
        """One MULTIAPPEND (RFC 3502): the batch is stored in one transaction."""
        sock.sendall(b"A%d APPEND %s%s\r\n" % (tag, folder.encode(), b"".join(batch)))
        self._read_tagged(reader, b"A%d" % tag)
        return tag + 1

    @staticmethod
    def _read_tagged(reader, tag: bytes) -> bytes:
        while True:
            line = reader.readline()
            if not line:
                raise DovecotError("connection closed during APPEND")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise DovecotError(f"IMAP command failed: {line!r}")
                return line

    def create_folder(self, user: str, folder: str) -> None:
        conn = self.imap_login(user)
        try:
            conn.create(folder)
        finally:
            conn.logout()

    def folder_status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN of a folder, read over IMAP."""
        conn = self.imap_login(user)
        try:
            typ, data = conn.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
            if typ != "OK":
                raise DovecotError(f"STATUS failed: {data!r}")
            inner = data[0].decode().split("(", 1)[1].rstrip(")").split()
            return {inner[i]: int(inner[i + 1]) for i in range(0, len(inner), 2)}
        finally:
            conn.logout()

    def seen_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        conn = self.imap_login(user)
        try:
            conn.select(folder, readonly=True)
            typ, data = conn.uid("SEARCH", "SEEN")
            return [int(x) for x in data[0].split()]
        finally:
            conn.logout()

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """Make the folder's UIDVALIDITY change, keeping its messages (like a rebuilt
        mail store): drop Dovecot's uidlist and indexes while stopped."""
        self.stop()
        maildir = self.home_root / user / "Maildir"
        if folder.upper() != "INBOX":
            maildir = maildir / f".{folder}"
        for name in os.listdir(maildir):
            if name.startswith("dovecot"):
                path = maildir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        time.sleep(1.1)  # UIDVALIDITY is a timestamp: make sure it differs
        self.start()
