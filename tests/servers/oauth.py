"""A real OAuth2 authorization server on 127.0.0.1 for the tests (HTTPS, test CA).

It speaks both dialects Knowlix uses: Microsoft's (``/<tenant>/v2.0/.well-known/
openid-configuration``, ``/<tenant>/oauth2/v2.0/authorize`` and ``token``, as msal
expects) and Google's (``/o/oauth2/auth``, ``/token``, ``/revoke``). It issues codes
(PKCE checked), short opaque access tokens and rotating refresh tokens, can revoke them,
and answers RFC 7662 introspection (``/introspect``, also on a plain-HTTP port for
Dovecot's ``oauth2`` passdb). ``check_xoauth2`` is the validator for the SMTP server.
Every token request is recorded in ``token_requests`` so tests assert what happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.servers.tls import TestCA

MICROSOFT_TOKEN_PATH = "/oauth2/v2.0/token"
MICROSOFT_AUTHORIZE_PATH = "/oauth2/v2.0/authorize"
GOOGLE_AUTH_PATH = "/o/oauth2/auth"
GOOGLE_TOKEN_PATH = "/token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_id_token(claims: dict) -> str:
    """An (unsigned-in-spirit) JWT: clients read it straight from the token endpoint."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'test-signature')}"


@dataclass
class Grant:
    """What a code, access token or refresh token stands for."""

    user: str
    client_id: str
    scope: str
    dialect: str  # "microsoft" or "google"
    redirect_uri: str = ""
    code_challenge: str = ""
    nonce: str = ""
    expires_at: float = 0.0
    active: bool = True


@dataclass
class TokenRequest:
    grant_type: str
    client_id: str
    dialect: str
    refresh_token: str = ""
    outcome: str = ""  # "ok" or the OAuth error code


@dataclass
class OAuthState:
    clients: dict[str, str] = field(default_factory=dict)
    user: str = "alice@example.com"
    codes: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    introspections: list[str] = field(default_factory=list)
    access_token_lifetime: int = 3600
    rotate_refresh_tokens: bool = True
    refresh_delay: float = 0.0
    deny_consent: bool = False
    outage: bool = False  # the token endpoint answers 503 with an HTML page


class OAuthServer:
    """Start with ``start()``; ``base_url`` is ``https://127.0.0.1:<port>``."""

    def __init__(self, ca: TestCA) -> None:
        self.ca = ca
        self.lock = threading.Lock()
        self.state = OAuthState()
        self._servers: list[ThreadingHTTPServer] = []

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"oauth": self})
        https = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        https.socket = self.ca.server_context().wrap_socket(
            https.socket, server_side=True
        )
        plain = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        for server in (https, plain):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers = [https, plain]
        self.port = https.server_address[1]
        self.http_port = plain.server_address[1]

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.state = OAuthState()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def introspection_url_http(self) -> str:
        """Plain-HTTP introspection for Dovecot (it then needs no CA)."""
        return f"http://127.0.0.1:{self.http_port}/introspect"

    # --- test controls -----------------------------------------------------------
    def register_client(self, client_id: str, secret: str) -> None:
        with self.lock:
            self.state.clients[client_id] = secret

    def login_as(self, user: str) -> None:
        """The account that approves the next authorization request."""
        with self.lock:
            self.state.user = user

    def expire_access_tokens(self) -> None:
        with self.lock:
            for grant in self.state.access_tokens.values():
                grant.expires_at = time.time() - 1

    def revoke_user(self, user: str) -> None:
        """Consent withdrawn / password reset: every token of ``user`` dies."""
        with self.lock:
            for table in (self.state.access_tokens, self.state.refresh_tokens):
                for grant in table.values():
                    if grant.user == user:
                        grant.active = False

    def refresh_requests(self) -> list[TokenRequest]:
        with self.lock:
            return [
                r for r in self.state.token_requests if r.grant_type == "refresh_token"
            ]

    def is_refresh_token_active(self, token: str) -> bool:
        with self.lock:
            grant = self.state.refresh_tokens.get(token)
            return bool(grant and grant.active)

    def introspect(self, token: str) -> dict:
        """RFC 7662: ``{"active": true, "username": ...}`` for a live access token."""
        with self.lock:
            self.state.introspections.append(token)
            grant = self.state.access_tokens.get(token)
            if not grant or not grant.active or grant.expires_at <= time.time():
                return {"active": False}
            return {
                "active": True,
                "username": grant.user,
                "email": grant.user,
                "client_id": grant.client_id,
                "scope": grant.scope,
                "exp": int(grant.expires_at),
            }

    def check_xoauth2(self, username: str, token: str) -> bool:
        """True when ``token`` is a live access token issued to ``username``."""
        answer = self.introspect(token)
        return answer["active"] and answer["username"].lower() == username.lower()

    def issue_tokens(self, user: str, client_id: str, scope: str) -> tuple[str, str]:
        """An (access, refresh) pair without a browser, for engine tests."""
        with self.lock:
            grant = Grant(user=user, client_id=client_id, scope=scope, dialect="google")
            return self._new_access(grant), self._new_refresh(grant)

    # --- token issuing (call with self.lock held) -------------------------------------
    def _new_access(self, grant: Grant) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self.state.access_tokens[token] = Grant(
            user=grant.user,
            client_id=grant.client_id,
            scope=grant.scope,
            dialect=grant.dialect,
            expires_at=time.time() + self.state.access_token_lifetime,
        )
        return token

    def _new_refresh(self, grant: Grant) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self.state.refresh_tokens[token] = Grant(
            user=grant.user,
            client_id=grant.client_id,
            scope=grant.scope,
            dialect=grant.dialect,
        )
        return token

    def _token_response(self, grant: Grant, *, with_refresh: bool) -> dict:
        answer = {
            "token_type": "Bearer",
            "scope": grant.scope,
            "expires_in": self.state.access_token_lifetime,
            "access_token": self._new_access(grant),
        }
        if with_refresh:
            answer["refresh_token"] = self._new_refresh(grant)
        scopes = grant.scope.split()
        if "openid" in scopes or grant.dialect == "microsoft":
            now = int(time.time())
            claims = {
                "iss": self.base_url,
                "sub": hashlib.sha256(grant.user.encode()).hexdigest()[:16],
                "aud": grant.client_id,
                "iat": now,
                "exp": now + 3600,
                "email": grant.user,
                "preferred_username": grant.user,
                "email_verified": True,
            }
            if grant.nonce:
                claims["nonce"] = grant.nonce
            answer["id_token"] = make_id_token(claims)
        return answer

    def handle_token(
        self, form: dict[str, str], basic: tuple[str, str] | None, dialect: str
    ) -> tuple[int, dict | str]:
        client_id = form.get("client_id") or (basic[0] if basic else "")
        secret = form.get("client_secret") or (basic[1] if basic else "")
        grant_type = form.get("grant_type", "")
        record = TokenRequest(
            grant_type, client_id, dialect, form.get("refresh_token", "")
        )
        if self.state.refresh_delay and grant_type == "refresh_token":
            time.sleep(self.state.refresh_delay)  # widen the race window
        with self.lock:
            self.state.token_requests.append(record)
            if self.state.outage:
                record.outcome = "outage"
                return 503, "<html><body>Service Unavailable</body></html>"
            status, answer = self._grant(form, client_id, secret, grant_type, dialect)
            record.outcome = answer.get("error", "ok")
            return status, answer

    def _grant(
        self,
        form: dict[str, str],
        client_id: str,
        secret: str,
        grant_type: str,
        dialect: str,
    ) -> tuple[int, dict]:
        if self.state.clients.get(client_id) != secret or not secret:
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed.",
            }
        if grant_type == "authorization_code":
            grant = self.state.codes.pop(form.get("code", ""), None)
            if grant is None or grant.client_id != client_id:
                return 400, _invalid_grant("The authorization code is invalid.")
            if grant.redirect_uri != form.get("redirect_uri"):
                return 400, _invalid_grant("redirect_uri does not match.")
            if grant.code_challenge:
                verifier = form.get("code_verifier", "")
                digest = _b64(hashlib.sha256(verifier.encode()).digest())
                if digest != grant.code_challenge:
                    return 400, _invalid_grant("PKCE verification failed.")
            return 200, self._token_response(grant, with_refresh=True)
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            grant = self.state.refresh_tokens.get(token)
            if grant is None or not grant.active or grant.client_id != client_id:
                return 400, _invalid_grant(
                    "AADSTS70000: The refresh token has been revoked or has expired."
                )
            rotate = self.state.rotate_refresh_tokens
            if rotate:
                grant.active = False  # strict: an unsaved rotated token is lost
            return 200, self._token_response(grant, with_refresh=rotate)
        return 400, {"error": "unsupported_grant_type"}

    def handle_authorize(self, query: dict[str, str], dialect: str) -> tuple[int, str]:
        """Approve at once for ``state.user``; answer with the redirect location."""
        redirect_uri = query.get("redirect_uri", "")
        with self.lock:
            if query.get("client_id") not in self.state.clients:
                return 400, ""
            params: dict[str, str] = {"state": query.get("state", "")}
            if self.state.deny_consent:
                params["error"] = "access_denied"
                params["error_description"] = "The user declined consent."
            else:
                code = "code-" + secrets.token_urlsafe(16)
                self.state.codes[code] = Grant(
                    user=self.state.user,
                    client_id=query["client_id"],
                    scope=query.get("scope", ""),
                    dialect=dialect,
                    redirect_uri=redirect_uri,
                    code_challenge=query.get("code_challenge", ""),
                    nonce=query.get("nonce", ""),
                )
                params["code"] = code
        return 302, f"{redirect_uri}?{urlencode(params)}"

    def openid_configuration(self, tenant: str) -> dict:
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": base + MICROSOFT_AUTHORIZE_PATH,
            "token_endpoint": base + MICROSOFT_TOKEN_PATH,
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def revoke(self, token: str) -> None:
        with self.lock:
            for table in (self.state.access_tokens, self.state.refresh_tokens):
                if token in table:
                    table[token].active = False


def _invalid_grant(description: str) -> dict:
    return {"error": "invalid_grant", "error_description": description}


class _Handler(BaseHTTPRequestHandler):
    oauth: OAuthServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet test output

    def _send(
        self, status: int, body: dict | str | None = None, location: str = ""
    ) -> None:
        is_text = isinstance(body, str)
        payload = body.encode() if is_text else json.dumps(body or {}).encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html" if is_text else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/", 1)
        if url.path.endswith("/v2.0/.well-known/openid-configuration"):
            return self._send(200, self.oauth.openid_configuration(parts[0]))
        if url.path.endswith(MICROSOFT_AUTHORIZE_PATH):
            status, location = self.oauth.handle_authorize(query, "microsoft")
            return self._send(status, location=location)
        if url.path == GOOGLE_AUTH_PATH:
            status, location = self.oauth.handle_authorize(query, "google")
            return self._send(status, location=location)
        if url.path.startswith("/introspect"):
            token = query.get("token") or self._bearer()
            return self._send(200, self.oauth.introspect(token))
        self._send(404, {"error": "not_found"})

    def _bearer(self) -> str:
        header = self.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else ""

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        form = self._form()
        if path.endswith(MICROSOFT_TOKEN_PATH):
            return self._send(
                *self.oauth.handle_token(form, self._basic(), "microsoft")
            )
        if path == GOOGLE_TOKEN_PATH:
            return self._send(*self.oauth.handle_token(form, self._basic(), "google"))
        if path == "/revoke":
            self.oauth.revoke(form.get("token", ""))
            return self._send(200, {})
        if path.startswith("/introspect"):
            token = form.get("token") or self._bearer()
            return self._send(200, self.oauth.introspect(token))
        self._send(404, {"error": "not_found"})
