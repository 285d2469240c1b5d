"""DKIM signing of outgoing mail, verified by dkimpy against the loopback DNS."""

from __future__ import annotations

import dkim
import dns.name
import pytest
from django.core.management import call_command
from django.db import connection

from dnscheck import services, signing
from dnscheck.lookup import make_resolver
from dnscheck.models import DkimKey, SendingDomain
from tests.servers.dns_fixtures import publish_domain

pytestmark = pytest.mark.django_db

RAW = (
    b"From: Alice <alice@company.com>\r\n"
    b"To: dana@customer.example\r\n"
    b"Subject: [TCK-42] Printer on fire\r\n"
    b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <42@company.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"We are on it.\r\n"
)


def loopback_dnsfunc(dns_server):
    """dkimpy's TXT lookup, through the loopback server (CNAMEs followed)."""
    resolver = make_resolver([dns_server.nameserver], 2.0)

    def get_txt(name: bytes, timeout: int = 5) -> bytes | None:
        answer = resolver.resolve(dns.name.from_text(name.decode()), "TXT")
        return b"".join(next(iter(answer)).strings)

    return get_txt


def test_verified_domain_mail_is_signed_and_verifies(dns_server, dkim_key):
    """Mail from a DKIM-verified domain carries a signature dkimpy verifies."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    signed = signing.dkim_sign(RAW, "company.com")
    assert signed.startswith(b"DKIM-Signature: ")
    assert b"d=company.com" in signed
    assert b"s=knowlix" in signed
    assert signed.endswith(RAW)
    assert dkim.verify(signed, dnsfunc=loopback_dnsfunc(dns_server))
    assert ("knowlix._domainkey.company.com.", "TXT") in dns_server.queries


def test_one_click_unsubscribe_fields_are_signed(dns_server, dkim_key):
    """RFC 8058: both List-Unsubscribe fields are covered by the signature, so a
    relay cannot add or change them."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    head, body = RAW.split(b"\r\n\r\n", 1)
    raw = (
        head + b"\r\nList-Unsubscribe: <https://crm.company.com/unsubscribe/t/>"
        b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n" + body
    )
    signed = signing.dkim_sign(raw, "company.com")
    signature = signed.split(b"\r\n\r\n")[0].split(b"From:")[0]
    fields = b"".join(signature.split()).split(b"h=")[1].split(b";")[0].split(b":")
    assert {b"list-unsubscribe", b"list-unsubscribe-post"} <= set(fields)
    assert dkim.verify(signed, dnsfunc=loopback_dnsfunc(dns_server))
    changed = signed.replace(b"One-Click", b"One-Clack")
    assert not dkim.verify(changed, dnsfunc=loopback_dnsfunc(dns_server))


def test_tampered_mail_does_not_verify(dns_server, dkim_key):
    """The verification is real: a changed body fails it."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    signed = signing.dkim_sign(RAW, "company.com")
    tampered = signed.replace(b"We are on it.", b"Send bitcoins.")
    assert not dkim.verify(tampered, dnsfunc=loopback_dnsfunc(dns_server))


def test_unverified_domain_is_returned_unchanged(dns_server, dkim_key):
    """A domain that is not verified for DKIM: the bytes come back untouched."""
    dns_server.set_txt("company.com", "v=spf1 -all")
    services.add_sending_domain(name="company.com")
    assert signing.dkim_sign(RAW, "company.com") is RAW
    assert signing.dkim_sign(RAW, "unknown.example") is RAW


def test_subdomain_is_signed_with_verified_organizational_domain(dns_server, dkim_key):
    """From marketing.company.com, with only company.com verified: d=company.com."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    raw = RAW.replace(b"alice@company.com", b"news@marketing.company.com")
    signed = signing.dkim_sign(raw, "marketing.company.com")
    assert b"d=company.com" in signed
    assert dkim.verify(signed, dnsfunc=loopback_dnsfunc(dns_server))


def test_subdomain_verified_itself_signs_as_itself(dns_server, dkim_key):
    """A verified subdomain signs with its own d= (strict alignment works)."""
    publish_domain(dns_server, "marketing.company.com")
    services.add_sending_domain(name="marketing.company.com")
    signed = signing.dkim_sign(RAW, "news@marketing.company.com")
    assert b"d=marketing.company.com" in signed
    assert dkim.verify(signed, dnsfunc=loopback_dnsfunc(dns_server))


def test_lf_line_endings_are_kept(dns_server, dkim_key):
    """A message with bare LF gets an LF-folded header and still verifies."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    raw = RAW.replace(b"\r\n", b"\n")
    signed = signing.dkim_sign(raw, "company.com")
    assert b"\r\n" not in signed
    assert dkim.verify(signed, dnsfunc=loopback_dnsfunc(dns_server))


def test_no_key_means_no_signature(dns_server):
    """Verified domain but no key generated: unsigned."""
    SendingDomain.objects.create(name="company.com", is_dkim_verified=True)
    assert signing.dkim_sign(RAW, "company.com") is RAW


def test_unreadable_key_leaves_mail_unsigned(dns_server, dkim_key, settings):
    """A key that no longer decrypts (encryption key changed): sent unsigned."""
    publish_domain(dns_server, "company.com")
    services.add_sending_domain(name="company.com")
    settings.KNOWLIX_ENCRYPTION_KEY = "cmVwbGFjZWQtZW5jcnlwdGlvbi1rZXktZm9yLXRlc3Q="
    assert signing.dkim_sign(RAW, "company.com") is RAW


def test_keygen_stores_key_encrypted_and_prints_record(capsys, settings):
    """dkim_keygen creates an active key, encrypted at rest, and prints its record."""
    settings.KNOWLIX_DKIM_TARGET_DOMAIN = "knowlix.com"
    call_command("dkim_keygen", "--bits", "1024")
    key = DkimKey.objects.get()
    out = capsys.readouterr().out
    assert f'knowlix._domainkey.knowlix.com. TXT "{key.dns_record}"' in out
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM dnscheck_dkimkey")
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:")
    assert "PRIVATE KEY" not in stored
    assert key.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")


def test_keygen_refuses_to_replace_without_rotate():
    """An active key is only replaced with --rotate, which retires the old one."""
    from django.core.management.base import CommandError

    call_command("dkim_keygen", "--bits", "1024")
    with pytest.raises(CommandError, match="--rotate"):
        call_command("dkim_keygen", "--bits", "1024")
    call_command("dkim_keygen", "--bits", "1024", "--rotate")
    assert DkimKey.objects.filter(is_active=True).count() == 1
    assert DkimKey.objects.count() == 2
