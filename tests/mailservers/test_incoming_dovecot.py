"""The Dovecot test server itself: users, APPEND, TLS, POP3 and the OAuth2 passdb."""

from __future__ import annotations

import imaplib
import json
import poplib
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest


def test_append_lands_in_mailbox_over_imaps(dovecot_user, test_ca):
    """A message delivered with APPEND is read back over implicit TLS."""
    dovecot_user.append(b"Subject: hello\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n")
    server = dovecot_user.server
    conn = imaplib.IMAP4_SSL(
        server.host, server.imaps_port, ssl_context=test_ca.client_context(), timeout=10
    )
    conn.login(dovecot_user.username, dovecot_user.password)
    conn.select("INBOX", readonly=True)
    typ, data = conn.fetch("1", "(RFC822)")
    conn.logout()
    assert data[0][1].startswith(b"Subject: hello")


def test_pop3_starttls_lists_uidl(dovecot_user, test_ca):
    """POP3 with STLS lists the appended message with a UIDL."""
    dovecot_user.append_many([b"Subject: %d\r\n\r\nx\r\n" % i for i in range(3)])
    server = dovecot_user.server
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.stls(context=test_ca.client_context())
    pop.user(dovecot_user.username)
    pop.pass_(dovecot_user.password)
    _, lines, _ = pop.uidl()
    pop.quit()
    assert len(lines) == 3


def test_wrong_password_is_refused(dovecot_user):
    """A bad password gets AUTHENTICATIONFAILED."""
    server = dovecot_user.server
    conn = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(dovecot_user.username, "wrong")


class _Introspection(BaseHTTPRequestHandler):
    tokens: dict[str, str] = {}

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        token = parse_qs(body).get("token", [""])[0]
        user = self.tokens.get(token)
        answer = {"active": True, "username": user} if user else {"active": False}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_oauth2_passdb_accepts_xoauth2(dovecot_factory):
    """With an introspection URL, XOAUTH2 logs in with a token the endpoint accepts."""
    httpd = HTTPServer(("127.0.0.1", 0), _Introspection)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/introspect"
        server = dovecot_factory(oauth2_introspection_url=url)
        server.add_user("oauthuser", "unused-password")
        _Introspection.tokens = {"good-token": "oauthuser"}

        def xoauth2(token):
            return f"user=oauthuser\x01auth=Bearer {token}\x01\x01".encode()

        conn = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
        typ, _ = conn.authenticate("XOAUTH2", lambda _: xoauth2("good-token"))
        assert typ == "OK"
        conn.logout()
        conn = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
        with pytest.raises(imaplib.IMAP4.error):
            conn.authenticate("XOAUTH2", lambda _: xoauth2("bad-token"))
    finally:
        httpd.shutdown()
