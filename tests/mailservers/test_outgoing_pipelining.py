"""SMTP PIPELINING (RFC 2920): MAIL, RCPT and DATA leave in one write when the
server offers it, every answer is read in order, and refusals end the transaction
as they do one command at a time."""

from __future__ import annotations

import socket
import threading

import pytest

from mailservers.backends.smtp import (
    PIPELINE_MAX_RECIPIENTS,
    SmtpConnection,
    SmtpParams,
)
from mailservers.errors import TransientError

RAW = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


def params(server, **kwargs) -> SmtpParams:  # noqa: ANN001
    return SmtpParams(host=server.host, port=server.port, timeout=5, **kwargs)


class ScriptedSmtp:
    """A one-connection SMTP server on loopback that offers PIPELINING and holds
    its answers until the whole group (up to DATA) has arrived: a client that
    waits for the MAIL answer before sending RCPT never gets one."""

    def __init__(
        self, *, rcpt_code: int = 250, data_code: int = 354, wait: float = 3.0
    ) -> None:
        self.wait = wait
        self.rcpt_code = rcpt_code
        self.data_code = data_code
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.listener.getsockname()[1]
        self.group = b""  # what arrived before the first answer to MAIL
        self.after_354 = b""  # what arrived after a 354 until the connection ended
        self.error = ""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _addr = self.listener.accept()
        conn.settimeout(self.wait)
        with conn:
            conn.sendall(b"220 scripted ESMTP\r\n")
            buffer = self._read_until(conn, b"\r\n", b"")
            conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
            try:
                rest = buffer[buffer.find(b"\r\n") + 2 :]
                self.group = self._read_until(conn, b"DATA\r\n", rest)
            except TimeoutError:
                self.error = "no DATA before the first answer: not pipelined"
                return
            rcpts = self.group.count(b"RCPT TO:")
            answers = (
                b"250 sender ok\r\n" + f"{self.rcpt_code} rcpt\r\n".encode() * rcpts
            )
            conn.sendall(answers + f"{self.data_code} go on\r\n".encode())
            if self.data_code != 354:
                self._read_until(conn, b"QUIT\r\n", b"", quiet=True)
                conn.sendall(b"221 bye\r\n")
                return
            content = self._read_until(conn, b"\r\n.\r\n", b"", quiet=True)
            self.after_354 = content
            if content.endswith(b"\r\n.\r\n"):
                conn.sendall(b"250 queued\r\n")
                self._read_until(conn, b"QUIT\r\n", b"", quiet=True)
                conn.sendall(b"221 bye\r\n")

    @staticmethod
    def _read_until(
        conn: socket.socket, end: bytes, data: bytes, *, quiet: bool = False
    ) -> bytes:
        while end not in data:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                if quiet:
                    return data
                raise
            if not chunk:
                return data
            data += chunk
        return data

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


def test_mail_rcpt_and_data_leave_together():
    """The server answers nothing before DATA has arrived, and the mail still
    goes: MAIL, both RCPTs and DATA were one group; the content came after 354."""
    server = ScriptedSmtp()
    try:
        with SmtpConnection(params(server)) as conn:
            results = conn.send(
                mail_from="a@example.com", recipients=["b@x.test", "c@x.test"], raw=RAW
            )
    finally:
        server.close()
    assert server.error == ""
    assert server.group.split(b"\r\n")[:4] == [
        b"MAIL FROM:<a@example.com> SIZE=%d" % len(RAW),
        b"RCPT TO:<b@x.test>",
        b"RCPT TO:<c@x.test>",
        b"DATA",
    ]
    assert all(r.ok for r in results.values())
    assert server.after_354 == RAW + b".\r\n"


def test_switched_off_it_waits_for_each_answer():
    """``pipelining=False`` sends MAIL alone: this server never answers it."""
    server = ScriptedSmtp(wait=0.5)
    try:
        with (
            pytest.raises(TransientError),
            SmtpConnection(params(server, pipelining=False)) as conn,
        ):
            conn.send(mail_from="a@example.com", recipients=["b@x.test"], raw=RAW)
    finally:
        server.close()
    assert server.error == "no DATA before the first answer: not pipelined"


def test_a_354_without_any_recipient_gets_no_content():
    """Every RCPT refused, yet DATA answered 354 (RFC 2920 says a server must
    not): the connection is dropped, so not one byte of content or an empty
    message reaches the server."""
    server = ScriptedSmtp(rcpt_code=550)
    try:
        with SmtpConnection(params(server)) as conn:
            results = conn.send(
                mail_from="a@example.com", recipients=["b@x.test"], raw=RAW
            )
            assert conn.connection is None
    finally:
        server.close()
    assert results["b@x.test"].permanent
    assert server.after_354 == b""


@pytest.fixture(params=[True, False], ids=["pipelined", "one-at-a-time"])
def server(request, smtp_server):  # noqa: ANN001
    smtp_server.pipelining = request.param
    return smtp_server


def test_refused_sender_fails_every_recipient_and_the_connection_goes_on(server):  # noqa: ANN001
    """MAIL refused: each recipient gets that answer, no mail is stored, and the
    next mail on the same connection is delivered (the RCPTs' and DATA's 503s
    were read, the transaction reset)."""
    server.reject_next(550, "5.7.1 sender refused", stage="mail")
    with SmtpConnection(params(server)) as conn:
        refused = conn.send(
            mail_from="a@x.test", recipients=["b@x.test", "c@x.test"], raw=RAW
        )
        ok = conn.send(mail_from="a@x.test", recipients=["d@x.test"], raw=RAW)
    assert {r.code for r in refused.values()} == {550}
    assert "sender refused" in refused["b@x.test"].reply
    assert ok["d@x.test"].ok
    assert [r.rcpt_tos for r in server.received] == [["d@x.test"]]
    assert server.connections == 1


def test_every_recipient_refused_then_the_next_mail_goes(server):  # noqa: ANN001
    """No recipient accepted: no content leaves, the next mail on the connection
    is delivered."""
    server.fail_rcpt("gone@x.test", 550, "5.1.1 no such user")
    with SmtpConnection(params(server)) as conn:
        refused = conn.send(mail_from="a@x.test", recipients=["gone@x.test"], raw=RAW)
        ok = conn.send(mail_from="a@x.test", recipients=["here@x.test"], raw=RAW)
    assert refused["gone@x.test"].permanent
    assert ok["here@x.test"].ok
    assert [r.rcpt_tos for r in server.received] == [["here@x.test"]]
    assert server.connections == 1


def test_421_at_mail_closes_and_is_transient(server):  # noqa: ANN001
    """The server closing at MAIL is a lost connection whichever way the
    commands went: the mail is retried, nothing stored."""
    server.reject_next(421, "4.3.2 shutting down", stage="mail")
    with SmtpConnection(params(server)) as conn:
        with pytest.raises(TransientError):
            conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
        assert conn.connection is None
    assert server.received == []


def test_many_recipients_go_one_command_at_a_time(smtp_server):  # noqa: ANN001
    """Above the group limit the commands go in lockstep (the scripted server,
    waiting for DATA, never answers them), and every recipient of a real server
    gets the mail."""
    recipients = [f"r{n}@x.test" for n in range(PIPELINE_MAX_RECIPIENTS + 1)]
    scripted = ScriptedSmtp(wait=0.5)
    try:
        with pytest.raises(TransientError), SmtpConnection(params(scripted)) as conn:
            conn.send(mail_from="a@x.test", recipients=recipients, raw=RAW)
    finally:
        scripted.close()
    assert scripted.error == "no DATA before the first answer: not pipelined"
    with SmtpConnection(params(smtp_server)) as conn:
        results = conn.send(mail_from="a@x.test", recipients=recipients, raw=RAW)
    assert all(r.ok for r in results.values())
    [received] = smtp_server.received
    assert received.rcpt_tos == recipients
