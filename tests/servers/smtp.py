"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd in a background thread).

Plain, STARTTLS or implicit TLS; AUTH PLAIN/LOGIN against ``users`` and XOAUTH2 through
a pluggable ``xoauth2_validator(user, token) -> bool`` (answering a failed XOAUTH2 with
Google's JSON error challenge). Fault switches make the next message fail in chosen
ways. Every accepted message is kept as a :class:`Received` envelope (thread-safe).

Run ``python -m tests.servers.smtp --spool DIR`` to serve from a separate process: it
prints ``PORT <n>`` once listening and writes each message to ``DIR`` (see
:class:`SmtpServerProcess`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Security = str  # "none" | "starttls" | "ssl"

# aiosmtpd's own smtp_AUTH still sets the deprecated attribute on every login.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None = None
    tls: bool = False


@dataclass
class _Fault:
    stage: str  # "connect" | "mail" | "rcpt" | "data" | "after_data"
    code: int | None  # None = drop the connection without answering
    text: str = ""
    address: str = ""  # rcpt faults only
    times: int | None = 1  # None = until cleared


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[Received] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    connections: int = 0
    logins: list[str] = field(default_factory=list)


class _Handler:
    """aiosmtpd hooks; all mutable state lives in the owning server's ``_state``."""

    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server

    def _take(self, stage: str, address: str = "") -> _Fault | None:
        state = self.server._state
        with state.lock:
            for fault in state.faults:
                if fault.stage != stage:
                    continue
                if fault.address and fault.address != address.lower():
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        state.faults.remove(fault)
                return fault
        return None

    async def _apply(self, smtp: SMTP, fault: _Fault) -> str:
        if fault.code is None:  # drop: abort without a reply
            assert smtp.transport is not None
            smtp.transport.abort()
            await asyncio.sleep(3600)  # cancelled by connection_lost
        reply = f"{fault.code} {fault.text}".strip()
        if fault.code == 421:  # "closing transmission channel"
            await smtp.push(reply)
            assert smtp.transport is not None
            smtp.transport.close()
            await asyncio.sleep(3600)
        return reply

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):  # noqa: ANN001, ANN201
        """Offer PIPELINING (RFC 2920) like real servers, unless switched off.
        aiosmtpd reads one command line at a time, so a pipelined group is
        answered in order without more."""
        session.host_name = hostname
        if self.server.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, options):  # noqa: ANN001, ANN201
        fault = self._take("mail")
        if fault:
            return await self._apply(smtp, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, options):  # noqa: ANN001, ANN201
        fault = self._take("rcpt", address)
        if fault:
            return await self._apply(smtp, fault)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(
        self, smtp: SMTP, session: Session, envelope: Envelope
    ) -> str:
        fault = self._take("data")
        if fault:
            return await self._apply(smtp, fault)
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=bytes(envelope.original_content or b""),
            login=_login_name(session),
            tls=smtp.transport is not None
            and smtp.transport.get_extra_info("ssl_object") is not None,
        )
        count = self.server._store(received)
        if count == self.server.stall_at:  # stored; the 250 never comes
            await asyncio.sleep(3600)  # cancelled by connection_lost
        fault = self._take("after_data")  # stored, then the reply is lost or refused
        if fault:
            return await self._apply(smtp, fault)
        return "250 2.0.0 OK queued"

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            blob = args[1].encode()
        else:
            challenge = await smtp.challenge_auth("")
            if not isinstance(challenge, bytes):
                return AuthResult(success=False, handled=False)
            blob = base64.b64encode(challenge)
        try:
            parts = base64.b64decode(blob, validate=True).decode().split("\x01")
            fields = dict(p.split("=", 1) for p in parts if "=" in p)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError, UnicodeDecodeError):
            await smtp.push("501 5.5.2 Cannot decode XOAUTH2 response")
            return AuthResult(success=False, handled=True)
        validator = self.server.xoauth2_validator
        if validator is not None and validator(user, token):
            self.server._note_login(user)
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # Google: a 334 JSON error challenge, then 535 after the empty reply.
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": "mail"})
        await smtp.challenge_auth(error.encode())
        return AuthResult(
            success=False,
            handled=False,
            message="535 5.7.8 Username and Password not accepted",
        )


def _login_name(session: Session) -> str | None:
    data = session.auth_data
    login = getattr(data, "login", None)
    return login.decode() if isinstance(login, bytes) else login


class _Greeting(asyncio.Protocol):
    """A connection that only hears a refusing greeting, then is closed."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.reply.encode() + b"\r\n")
        transport.close()


class SmtpTestServer:
    """An aiosmtpd server on a free port of 127.0.0.1, started in its own thread."""

    def __init__(
        self,
        *,
        security: Security = "none",
        ssl_context: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        auth_require_tls: bool = False,
        data_size_limit: int | None = 40 * 1024 * 1024,
        spool: Path | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown security {security!r}")
        if security != "none" and ssl_context is None:
            raise ValueError("TLS needs an ssl_context (TestCA.server_context())")
        self.security = security
        self.host = "127.0.0.1"
        self.port = 0
        self.users: dict[str, str] = dict(users or {})
        self.xoauth2_validator: Callable[[str, str], bool] | None = None
        # What a refused PLAIN/LOGIN hears (set a Gmail-like reply to test hints).
        self.auth_failure_reply = "535 5.7.8 Authentication credentials invalid"
        self._ssl_context = ssl_context
        self._auth_require_tls = auth_require_tls
        self._data_size_limit = data_size_limit
        self._spool = spool
        # The message with this number (1 = the first) is stored but never answered,
        # so a client can be killed with a mail surely in flight (``--stall-at``).
        self.stall_at: int | None = None
        # Offer SMTPUTF8 (RFC 6531) to connections opened from now on.
        self.smtputf8 = False
        # Offer PIPELINING (RFC 2920) in the answer to EHLO from now on.
        self.pipelining = True
        self._state = _State()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> SmtpTestServer:
        """Listen on a free port; raises if the server cannot start (never skips)."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(self._create_server(loop))
            except BaseException as exc:  # reported to start() and re-raised there
                errors.append(exc)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(
            target=run, name="smtp-test-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the SMTP test server did not start within 10 s")
        if errors:
            raise RuntimeError(f"the SMTP test server cannot start: {errors[0]!r}")
        return self

    async def _create_server(
        self, loop: asyncio.AbstractEventLoop, port: int = 0
    ) -> asyncio.Server:
        handler = _Handler(self)

        def factory() -> SMTP | asyncio.Protocol:
            with self._state.lock:
                self._state.connections += 1
            fault = handler._take("connect")
            if fault is not None:  # refuse at the greeting (a 421 and goodbye)
                return _Greeting(f"{fault.code} {fault.text}".strip())
            return SMTP(
                handler,
                hostname="smtp.test",
                tls_context=self._ssl_context if self.security == "starttls" else None,
                require_starttls=self.security == "starttls",
                auth_require_tls=self._auth_require_tls,
                authenticator=self._authenticate,
                data_size_limit=self._data_size_limit,
                enable_SMTPUTF8=self.smtputf8,
                timeout=30,
                loop=loop,
            )

        tls = self._ssl_context if self.security == "ssl" else None
        return await loop.create_server(
            factory, self.host, port, ssl=tls, reuse_address=True
        )

    def stop_listening(self) -> None:
        """Close the listening socket: connections to the port are refused (an
        outage) until ``listen_again``."""
        assert self._loop is not None and self._server is not None
        server = self._server
        done = asyncio.run_coroutine_threadsafe(self._close(server), self._loop)
        done.result(10)

    async def _close(self, server: asyncio.AbstractServer) -> None:
        server.close()
        await server.wait_closed()

    def listen_again(self) -> None:
        """Listen on the same port again after ``stop_listening``."""
        assert self._loop is not None
        loop = self._loop

        async def reopen() -> asyncio.AbstractServer:
            old = self._server
            self._server = await self._create_server(loop, port=self.port)
            return old

        asyncio.run_coroutine_threadsafe(reopen(), loop).result(10)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    # -- auth ----------------------------------------------------------------------
    def _authenticate(
        self, smtp, session, envelope, mechanism, auth_data
    ) -> AuthResult:  # noqa: ANN001
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if user in self.users and self.users[user] == password:
                self._note_login(user)
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False, message=self.auth_failure_reply)

    def _note_login(self, user: str) -> None:
        with self._state.lock:
            self._state.logins.append(user)

    # -- fault switches ------------------------------------------------------------
    def reject_next(self, code: int, text: str, *, stage: str = "data") -> None:
        """Answer the next greeting / MAIL FROM / DATA (``stage``: "connect",
        "mail", "data") with ``code text``.

        421 also closes the connection, as real servers do.
        """
        self._add_fault(_Fault(stage=stage, code=code, text=text))

    def fail_rcpt(
        self, address: str, code: int, text: str, *, times: int | None = None
    ) -> None:
        """Refuse RCPT TO ``address`` (every time, or ``times`` times)."""
        fault = _Fault("rcpt", code, text, address=address.lower(), times=times)
        self._add_fault(fault)

    def drop_next(self, *, stage: str = "data") -> None:
        """Drop the connection without a reply at the next ``stage``.

        ``after_data`` keeps the message first: the client cannot tell it arrived.
        """
        self._add_fault(_Fault(stage=stage, code=None))

    def quota_exceeded_next(self) -> None:
        """The provider's daily sending quota answer at the next MAIL FROM."""
        self.reject_next(552, "5.4.5 Daily sending quota exceeded", stage="mail")

    def _add_fault(self, fault: _Fault) -> None:
        with self._state.lock:
            self._state.faults.append(fault)

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def reset(self) -> None:
        """Forget messages, faults, counters, users' logins and the validator."""
        with self._state.lock:
            self._state.received.clear()
            self._state.faults.clear()
            self._state.connections = 0
            self._state.logins.clear()
        self.xoauth2_validator = None
        self.auth_failure_reply = "535 5.7.8 Authentication credentials invalid"
        self.smtputf8 = False
        self.pipelining = True

    # -- what arrived --------------------------------------------------------------
    def _store(self, received: Received) -> int:
        with self._state.lock:
            self._state.received.append(received)
            count = len(self._state.received)
        if self._spool is not None:
            _write_spool(self._spool, count, received)
        return count

    @property
    def received(self) -> list[Received]:
        """A snapshot of the accepted messages, oldest first."""
        with self._state.lock:
            return list(self._state.received)

    @property
    def connections(self) -> int:
        with self._state.lock:
            return self._state.connections

    @property
    def logins(self) -> list[str]:
        with self._state.lock:
            return list(self._state.logins)

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _write_spool(spool: Path, number: int, received: Received) -> None:
    """Write ``<n>.eml`` then ``<n>.json`` (the envelope, written last)."""
    name = f"{os.getpid()}-{number:07d}"
    (spool / f"{name}.eml").write_bytes(received.raw)
    meta = {"mail_from": received.mail_from, "rcpt_tos": received.rcpt_tos}
    tmp = spool / f"{name}.json.tmp"
    tmp.write_text(json.dumps(meta))
    tmp.rename(spool / f"{name}.json")


def read_spool(spool: Path) -> list[Received]:
    """The messages a server process wrote to ``spool``, in arrival order."""
    out = []
    for meta_path in sorted(spool.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        raw = meta_path.with_suffix(".eml").read_bytes()
        out.append(Received(meta["mail_from"], meta["rcpt_tos"], raw))
    return out


class SmtpServerProcess:
    """The plain server in a separate process (its own GIL), spooling to a directory.

    Without ``spool`` (benchmarks) it keeps nothing on disk and ``received`` is empty.
    """

    def __init__(self, spool: Path | None, *, stall_at: int | None = None) -> None:
        self.spool = spool
        self.stall_at = stall_at
        self.host = "127.0.0.1"
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> SmtpServerProcess:
        args = [sys.executable, "-m", "tests.servers.smtp"]
        if self.spool is not None:
            self.spool.mkdir(parents=True, exist_ok=True)
            args += ["--spool", str(self.spool)]
        if self.stall_at is not None:
            args += ["--stall-at", str(self.stall_at)]
        root = Path(__file__).resolve().parents[2]
        self._proc = subprocess.Popen(
            args,
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the SMTP server process did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def received(self) -> list[Received]:
        return read_spool(self.spool) if self.spool is not None else []

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spool", type=Path, help="write each message here")
    parser.add_argument(
        "--stall-at", type=int, help="store message N but never answer its DATA"
    )
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # no line per command
    server = SmtpTestServer(spool=args.spool)
    server.stall_at = args.stall_at
    server.start()
    print(f"PORT {server.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
