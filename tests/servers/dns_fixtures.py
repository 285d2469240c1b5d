"""pytest fixtures for the loopback DNS servers (tests/servers/dns.py).

``dns_server`` is one real server for the whole run, emptied before each test and
set as KNOWLIX_DNS_NAMESERVERS; ``silent_dns_server`` is a second one that never
answers. ``knowlix_dns`` publishes Knowlix's own side (SPF include and DKIM key) and
``dkim_key`` stores that key as Knowlix's active signing key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers.dns import LoopbackDnsServer

SPF_INCLUDE = "_spf.knowlix.com"
DKIM_SELECTOR = "knowlix"
DKIM_TARGET_DOMAIN = "knowlix.com"
DKIM_TARGET = f"{DKIM_SELECTOR}._domainkey.{DKIM_TARGET_DOMAIN}."


@dataclass(frozen=True)
class TestKey:
    """An RSA key pair as dnscheck stores it: PEM private key, base64 DER public."""

    private_pem: str
    public_b64: str

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def make_test_key(bits: int = 2048) -> TestKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TestKey(pem, base64.b64encode(der).decode())


def publish_domain(server: LoopbackDnsServer, domain: str, *, dmarc: str = "") -> None:
    """Publish a domain whose three records are right (and its MX, which mx names)."""
    server.set_txt(domain, f"v=spf1 mx include:{SPF_INCLUDE} -all")
    server.remove(domain, "MX")
    server.add(domain, "MX", f"mx.{domain}")
    server.set_cname(f"{DKIM_SELECTOR}._domainkey.{domain}", DKIM_TARGET)
    server.set_txt(
        f"_dmarc.{domain}", dmarc or f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"
    )


@pytest.fixture(scope="session")
def _dns_server_session() -> Iterator[LoopbackDnsServer]:
    server = LoopbackDnsServer().start()  # raises when it cannot bind or answer
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _silent_dns_server_session() -> Iterator[LoopbackDnsServer]:
    server = LoopbackDnsServer().start()
    server.silence()
    yield server
    server.stop()


@pytest.fixture
def dns_server(_dns_server_session: LoopbackDnsServer, settings) -> LoopbackDnsServer:
    """The loopback DNS server, empty, and the app's resolver pointed at it."""
    _dns_server_session.reset()
    settings.KNOWLIX_DNS_NAMESERVERS = [_dns_server_session.nameserver]
    settings.KNOWLIX_DNS_TIMEOUT = 1.0
    settings.KNOWLIX_SPF_INCLUDE = SPF_INCLUDE
    settings.KNOWLIX_DKIM_SELECTOR = DKIM_SELECTOR
    settings.KNOWLIX_DKIM_TARGET_DOMAIN = DKIM_TARGET_DOMAIN
    return _dns_server_session


@pytest.fixture
def silent_dns_server(
    _silent_dns_server_session: LoopbackDnsServer,
) -> LoopbackDnsServer:
    """A second loopback DNS server that receives queries and never answers."""
    return _silent_dns_server_session


@pytest.fixture(scope="session")
def dkim_test_key() -> TestKey:
    """One RSA key pair per run (generating keys is slow)."""
    return make_test_key()


@pytest.fixture
def knowlix_dns(dns_server: LoopbackDnsServer, dkim_test_key: TestKey) -> TestKey:
    """Knowlix's side published: the SPF include and the DKIM key at the target."""
    dns_server.set_txt(SPF_INCLUDE, "v=spf1 ip4:192.0.2.0/24 -all")
    dns_server.set_txt(DKIM_TARGET, dkim_test_key.record)
    return dkim_test_key


@pytest.fixture
def dkim_key(db, knowlix_dns: TestKey):
    """Knowlix's active signing key in the database, published in the test DNS."""
    from dnscheck.models import DkimKey

    return DkimKey.objects.create(
        selector=DKIM_SELECTOR,
        private_key=knowlix_dns.private_pem,
        public_key=knowlix_dns.public_b64,
    )
