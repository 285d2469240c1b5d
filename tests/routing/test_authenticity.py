"""Local DKIM check when no trusted Authentication-Results exist (real signatures)."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from feed.models import Message
from routing import authenticity
from tests.routing.conftest import eml


@pytest.fixture
def signer(monkeypatch):
    """Sign as customer.example; the DKIM key is served by a fake TXT lookup."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def resolve_txt(name: bytes, timeout: int = 3) -> bytes | None:
        return record if name == b"sel._domainkey.customer.example." else None

    monkeypatch.setattr(authenticity, "resolve_txt", resolve_txt)

    def sign(raw: bytes) -> bytes:
        header = dkim.sign(
            raw,
            b"sel",
            b"customer.example",
            private,
            include_headers=[b"from", b"to", b"subject"],
        )
        return header + raw

    return sign


def test_valid_local_dkim_signature_is_recorded(aliases, route, signer):
    """A good signature is checked locally and recorded as a pass."""
    result = route(signer(eml("new_ticket.eml")))
    message = Message.objects.get(pk=result.routes[0].message)
    assert message.auth_verdict == "dkim=pass (local)"
    assert not message.is_unverified_sender


def test_tampered_body_fails_local_dkim_and_marks_unverified(aliases, route, signer):
    """A body changed after signing fails the local check: unverified sender."""
    raw = signer(eml("new_ticket.eml")).replace(b"blank pages", b"pay 10,000 EUR")
    result = route(raw)
    message = Message.objects.get(pk=result.routes[0].message)
    assert message.auth_verdict == "dkim=fail (local)"
    assert message.is_unverified_sender


def test_dns_failure_is_a_temperror_not_a_failure(monkeypatch, aliases, route, signer):
    """When DNS cannot answer, the sender is not marked unverified."""

    def unavailable(name: bytes, timeout: int = 3) -> bytes | None:
        raise authenticity.DnsUnavailable("timeout")

    monkeypatch.setattr(authenticity, "resolve_txt", unavailable)
    result = route(signer(eml("new_ticket.eml")))
    message = Message.objects.get(pk=result.routes[0].message)
    assert message.auth_verdict == "dkim=temperror (local)"
    assert not message.is_unverified_sender
