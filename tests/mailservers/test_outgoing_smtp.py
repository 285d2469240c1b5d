"""SmtpConnection and test_connection against the real loopback SMTP servers."""

from __future__ import annotations

import socket

import pytest

from mailservers.backends.smtp import SmtpConnection, SmtpParams
from mailservers.backends.smtp import test_connection as check_connection
from mailservers.errors import (
    DeliveryError,
    ServerAuthError,
    ServerQuotaError,
    TransientError,
)
from tests.servers.net import free_port
from tests.servers.smtp_fixtures import SMTP_PASSWORD, SMTP_USER

RAW = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


def params(server, test_ca=None, **kwargs) -> SmtpParams:  # noqa: ANN001
    values = {
        "host": server.host,
        "port": server.port,
        "security": server.security,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "timeout": 5,
        "ca_file": str(test_ca.ca_path) if test_ca else "",
    }
    values.update(kwargs)
    return SmtpParams(**values)


@pytest.mark.parametrize("fixture", ["smtp_server", "starttls_server", "smtps_server"])
def test_sends_over_each_security(fixture, request, test_ca):  # noqa: ANN001
    """Plain, STARTTLS and implicit TLS all deliver the exact bytes after AUTH."""
    server = request.getfixturevalue(fixture)
    with SmtpConnection(params(server, test_ca)) as conn:
        results = conn.send(mail_from="a@example.com", recipients=["b@x.test"], raw=RAW)
    assert results["b@x.test"].ok
    [received] = server.received
    assert received.raw == RAW
    assert received.login == SMTP_USER
    assert received.tls is (fixture != "smtp_server")


def test_one_connection_carries_many_mails(smtp_server):  # noqa: ANN001
    """Several sends on one open connection use a single TCP connection and login."""
    with SmtpConnection(params(smtp_server)) as conn:
        for n in range(5):
            conn.send(mail_from="a@example.com", recipients=[f"r{n}@x.test"], raw=RAW)
    assert len(smtp_server.received) == 5
    assert smtp_server.connections == 1
    assert smtp_server.logins == [SMTP_USER]


def test_refused_recipient_fails_alone(smtp_server):  # noqa: ANN001
    """A 550 on one RCPT fails that recipient; the others still receive the mail."""
    smtp_server.fail_rcpt("gone@x.test", 550, "5.1.1 mailbox unavailable")
    with SmtpConnection(params(smtp_server)) as conn:
        results = conn.send(
            mail_from="a@example.com", recipients=["ok@x.test", "gone@x.test"], raw=RAW
        )
    assert results["ok@x.test"].ok
    assert results["gone@x.test"].permanent
    assert "mailbox unavailable" in results["gone@x.test"].reply
    assert [r.rcpt_tos for r in smtp_server.received] == [["ok@x.test"]]


@pytest.mark.parametrize(
    ("code", "permanent"), [(451, False), (550, True), (552, True), (554, True)]
)
def test_data_reply_is_each_recipients_result(smtp_server, code, permanent):  # noqa: ANN001
    """A refused DATA becomes every accepted recipient's result, classed by code."""
    smtp_server.reject_next(code, "no thanks")
    with SmtpConnection(params(smtp_server)) as conn:
        results = conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
        assert not results["b@x.test"].ok
        assert results["b@x.test"].permanent is permanent
        assert results["b@x.test"].as_error().smtp_code == code
        # The connection stays usable for the next mail.
        assert conn.send(mail_from="a@x.test", recipients=["c@x.test"], raw=RAW)[
            "c@x.test"
        ].ok
    assert [r.rcpt_tos for r in smtp_server.received] == [["c@x.test"]]


def test_421_is_transient_and_closes(smtp_server):  # noqa: ANN001
    """421 raises a transient error and the connection is reopened on the next send."""
    smtp_server.reject_next(421, "4.7.0 try again later")
    conn = SmtpConnection(params(smtp_server))
    conn.open()
    with pytest.raises(TransientError, match="try again later"):
        conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
    assert conn.connection is None
    assert conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)[
        "b@x.test"
    ].ok
    conn.close()
    assert len(smtp_server.received) == 1


def test_dropped_connection_is_transient(smtp_server):  # noqa: ANN001
    """A connection dropped before the body raises TransientError; nothing stored."""
    smtp_server.drop_next(stage="rcpt")
    with (
        SmtpConnection(params(smtp_server)) as conn,
        pytest.raises(TransientError, match="connection"),
    ):
        conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
    assert smtp_server.received == []


def test_connection_lost_after_the_body_is_a_permanent_uncertainty(smtp_server):  # noqa: ANN001
    """Lost between the final dot and the reply: permanent, so never re-sent."""
    smtp_server.drop_next(stage="after_data")
    with (
        SmtpConnection(params(smtp_server)) as conn,
        pytest.raises(DeliveryError, match="cannot tell whether it left") as info,
    ):
        conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
    assert info.value.permanent is True
    assert len(smtp_server.received) == 1


def test_sending_quota_raises_quota_error(smtp_server):  # noqa: ANN001
    """The provider's quota answer raises ServerQuotaError (the server gets paused)."""
    smtp_server.quota_exceeded_next()
    with (
        SmtpConnection(params(smtp_server)) as conn,
        pytest.raises(ServerQuotaError, match="quota"),
    ):
        conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)


def test_mailbox_full_is_a_recipient_failure(smtp_server):  # noqa: ANN001
    """A full mailbox (552 5.2.2) fails the recipient, it does not pause the server."""
    smtp_server.fail_rcpt("full@x.test", 552, "5.2.2 mailbox quota exceeded")
    with SmtpConnection(params(smtp_server)) as conn:
        results = conn.send(mail_from="a@x.test", recipients=["full@x.test"], raw=RAW)
    assert results["full@x.test"].permanent


def test_header_injection_in_envelope_refused(smtp_server):  # noqa: ANN001
    """An envelope address carrying CR/LF fails alone before anything is sent."""
    bad = "b@x.test>\r\nRCPT TO:<evil@x.test"
    with SmtpConnection(params(smtp_server)) as conn:
        results = conn.send(mail_from="a@x.test", recipients=[bad], raw=RAW)
    assert results[bad].code == 553 and results[bad].permanent
    assert "not an email address" in results[bad].reply
    assert smtp_server.received == []


def test_header_injection_in_envelope_sender_refused(smtp_server):  # noqa: ANN001
    """A MAIL FROM carrying CR/LF raises a permanent error; nothing is sent."""
    with (
        SmtpConnection(params(smtp_server)) as conn,
        pytest.raises(DeliveryError, match="not an email address"),
    ):
        conn.send(mail_from="a@x.test>\r\nRSET", recipients=["b@x.test"], raw=RAW)
    assert smtp_server.received == []


def test_xoauth2_token_accepted(smtp_server):  # noqa: ANN001
    """XOAUTH2 sends the token from the callable and the server sees the user."""
    smtp_server.xoauth2_validator = lambda user, token: token == "good-token"
    p = params(smtp_server, password="", token=lambda: "good-token")
    with SmtpConnection(p) as conn:
        conn.send(mail_from="a@x.test", recipients=["b@x.test"], raw=RAW)
    assert smtp_server.received[0].login == SMTP_USER


def test_xoauth2_refused_token_is_auth_error(smtp_server):  # noqa: ANN001
    """Google's error challenge is answered and ends in ServerAuthError."""
    smtp_server.xoauth2_validator = lambda user, token: False
    p = params(smtp_server, password="", token=lambda: "expired")
    with pytest.raises(ServerAuthError, match="535"):
        SmtpConnection(p).open()


def test_check_ok(starttls_server, test_ca):  # noqa: ANN001
    """A good configuration reports success."""
    check = check_connection(params(starttls_server, test_ca))
    assert check.ok, check.message


def test_check_bad_password_gmail_hint(smtp_server):  # noqa: ANN001
    """Bad credentials say so; a Gmail-looking reply adds the app-password hint."""
    check = check_connection(params(smtp_server, password="wrong"))
    assert not check.ok
    assert "refused the credentials" in check.message
    assert "app password" not in check.message
    smtp_server.auth_failure_reply = (
        "535 5.7.8 Username and Password not accepted. For more information, go to "
        "https://support.google.com/mail/?p=BadCredentials - gsmtp"
    )
    check = check_connection(params(smtp_server, password="wrong"))
    assert "app password" in check.message


def test_check_refused_port():
    """Nothing listening: the message names the port."""
    p = SmtpParams(host="127.0.0.1", port=free_port(), timeout=5)
    check = check_connection(p)
    assert not check.ok
    assert "refused the connection on port" in check.message


def test_check_unknown_host():
    """An unresolvable host says it is unknown."""
    check = check_connection(
        SmtpParams(host="no-such-host.invalid", port=25, timeout=5)
    )
    assert "Unknown host" in check.message


def test_check_untrusted_certificate(smtps_server):  # noqa: ANN001
    """A certificate from an unknown CA is reported as not trusted."""
    check = check_connection(params(smtps_server, None))
    assert "not trusted" in check.message


def test_check_tls_on_plain_port(smtp_server, test_ca):  # noqa: ANN001
    """SSL/TLS against a plain port explains the port/security mismatch."""
    check = check_connection(params(smtp_server, test_ca, security="ssl"))
    assert "does not speak SSL/TLS" in check.message


def test_check_starttls_not_offered(smtp_server, test_ca):  # noqa: ANN001
    """STARTTLS against a server without it says so."""
    check = check_connection(params(smtp_server, test_ca, security="starttls"))
    assert "does not offer STARTTLS" in check.message


def test_check_auth_needs_tls(starttls_server, test_ca):  # noqa: ANN001
    """No encryption against a STARTTLS-only server: refused before AUTH, explained."""
    check = check_connection(params(starttls_server, test_ca, security="none"))
    assert not check.ok
    assert "authentication" in check.message or "STARTTLS" in check.message


def test_check_silent_server_times_out_with_hint():
    """A port that accepts but never greets: a timeout, with the 465 hint if apt."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        check = check_connection(SmtpParams(host="127.0.0.1", port=port, timeout=1))
    assert not check.ok
    assert f"No answer from 127.0.0.1:{port} within 1 s" in check.message


def test_after_data_runs_once_the_content_is_sent_and_cannot_lose_the_verdict(
    smtp_server,  # noqa: ANN001
):
    """``after_data`` runs after the final dot, before the 250 is read: the server
    already holds the mail then. A failing ``after_data`` is dropped, the verdict
    is still read, and the connection goes on."""
    seen: list[int] = []

    def after_data() -> None:
        seen.append(len(smtp_server.received))
        raise RuntimeError("the caller's own bug")

    with SmtpConnection(params(smtp_server)) as conn:
        first = conn.send(
            mail_from="a@example.com", recipients=["b@x.test"], raw=RAW,
            after_data=after_data,
        )  # fmt: skip
        second = conn.send(mail_from="a@example.com", recipients=["c@x.test"], raw=RAW)
    assert first["b@x.test"].ok and second["c@x.test"].ok
    assert len(seen) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [["b@x.test"], ["c@x.test"]]


def test_prepared_mail_is_sent_as_checked_and_stuffed(smtp_server):  # noqa: ANN001
    """``prepare`` checks addresses and dot-stuffs ahead: the bytes on the wire are
    the same as unprepared (a line starting with a dot is doubled, then undone by
    the server), a bad address prepared is still refused alone, and a prepared
    body is used only for the very bytes object it was made from."""
    raw = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n"
    with SmtpConnection(params(smtp_server)) as conn:
        conn.prepare(["a@example.com", "b@x.test", "bad address@x.test"], raw)
        results = conn.send(
            mail_from="a@example.com", recipients=["b@x.test", "bad address@x.test"],
            raw=raw,
        )  # fmt: skip
        conn.prepare(["a@example.com", "c@x.test"], raw)
        other = bytes(bytearray(RAW))  # not the prepared object
        conn.send(mail_from="a@example.com", recipients=["c@x.test"], raw=other)
    assert results["b@x.test"].ok
    assert results["bad address@x.test"].code == 553
    assert [r.raw for r in smtp_server.received] == [raw, RAW]
