"""Sender authenticity: forged staff and contact senders, with and without a valid
DKIM signature (signed with dkimpy, the key on the loopback DNS server), and
trusted or untrusted Authentication-Results."""

from __future__ import annotations

import dkim
import pytest

from feed.models import Follower, Message
from feed.services import follow
from knowlix import params
from knowlix.users import get_profile
from mailservers.services.outgoing import process_outbox
from routing.matching import TRUSTED_AUTHSERV_IDS
from tests.routing.conftest import eml
from tests.servers.dns_fixtures import TestKey as DkimKey
from tests.servers.dns_fixtures import make_test_key


@pytest.fixture(scope="module")
def attacker_key() -> DkimKey:
    return make_test_key(1024)


@pytest.fixture
def publish(dns_server):
    """``publish(domain, key)``: the key at ``sel._domainkey.<domain>``."""

    def run(domain: str, key: DkimKey) -> None:
        dns_server.set_txt(f"sel._domainkey.{domain}", key.record)

    return run


def sign(raw: bytes, domain: str, key: DkimKey) -> bytes:
    header = dkim.sign(
        raw,
        b"sel",
        domain.encode(),
        key.private_pem.encode(),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return header + raw


def from_alice(n: int, *, to: str = "helpdesk@example.com") -> bytes:
    return (
        eml("new_ticket.eml")
        .replace(b"Dana Customer <dana@customer.example>", b"Alice <alice@example.com>")
        .replace(b"new-ticket-1@", f"forged-{n}@".encode())
        .replace(b"To: helpdesk@example.com", f"To: {to}".encode())
    )


def posted(result) -> Message:
    assert result.outcome == "routed", result.reason
    return Message.objects.get(pk=result.routes[0].message)


def test_forged_staff_sender_is_unverified_and_no_author(aliases, route, alice):
    """No proof: alice's address is a contact's, marked, never alice herself."""
    message = posted(route(from_alice(1)))
    assert message.author_user is None
    assert message.author_contact.email == "alice@example.com"
    assert message.is_unverified_sender
    assert not Follower.objects.filter(user=alice).exists()


def test_staff_sender_with_valid_aligned_dkim_is_the_user(
    aliases, route, alice, publish, dkim_test_key
):
    """A valid example.com signature, key on the loopback DNS: authored by alice."""
    publish("example.com", dkim_test_key)
    message = posted(route(sign(from_alice(2), "example.com", dkim_test_key)))
    assert message.author_user == alice
    assert not message.is_unverified_sender
    assert message.auth_verdict == "dkim=pass (local)"


def test_staff_sender_signed_by_another_domain_is_unverified(
    aliases, route, alice, publish, attacker_key
):
    """A valid signature of the attacker's own domain proves nothing about alice."""
    publish("evil.example", attacker_key)
    message = posted(route(sign(from_alice(3), "evil.example", attacker_key)))
    assert message.author_user is None
    assert message.is_unverified_sender
    assert message.auth_verdict == "dkim=unaligned (local)"


def test_staff_sender_with_tampered_dkim_is_unverified(
    aliases, route, alice, publish, dkim_test_key
):
    """A signature that no longer verifies: a failure, unverified."""
    publish("example.com", dkim_test_key)
    raw = sign(from_alice(4), "example.com", dkim_test_key).replace(
        b"blank pages", b"pay 10,000 EUR"
    )
    message = posted(route(raw))
    assert message.author_user is None and message.is_unverified_sender
    assert message.auth_verdict == "dkim=fail (local)"


def test_dns_failure_proves_nothing_for_staff(
    aliases, route, alice, dkim_test_key, dns_server
):
    """DNS does not answer: a temperror, so a user's address stays unproven."""
    dns_server.silence("sel._domainkey.example.com")
    message = posted(route(sign(from_alice(5), "example.com", dkim_test_key)))
    assert message.auth_verdict == "dkim=temperror (local)"
    assert message.author_user is None and message.is_unverified_sender


def test_trusted_authentication_results_prove_staff(aliases, route, alice):
    """An aligned pass from the trusted authserv-id: alice; from anyone else: not."""
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    proof = b"Authentication-Results: %s; dkim=pass header.d=example.com\r\n"
    genuine = posted(route(proof % b"mx.example.com" + from_alice(6)))
    assert genuine.author_user == alice and not genuine.is_unverified_sender
    forged = posted(route(proof % b"forged.example" + from_alice(7)))
    assert forged.author_user is None and forged.is_unverified_sender
    other_domain = (
        b"Authentication-Results: mx.example.com; dkim=pass header.d=evil.example\r\n"
    )
    unaligned = posted(route(other_domain + from_alice(8)))
    assert unaligned.author_user is None and unaligned.is_unverified_sender


def test_forged_staff_sender_is_loop_limited(aliases, route, alice):
    """Counted like any outsider: over the limit, refused (users never are)."""
    params.set_param(params.LOOP_LIMIT, "2")
    outcomes = [route(from_alice(10 + n)).outcome for n in range(3)]
    assert outcomes == ["routed", "routed", "refused"]


def test_forged_staff_reply_is_not_relayed_in_the_users_name(
    aliases, route, ticket, alice, bob, settings, smtp_server
):
    """A forged reply of alice's: no mail to the customer; bob's notice says so."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    profile = get_profile(bob)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save(update_fields=["notify_by"])
    follow(record=ticket, user=bob)
    message = posted(
        route(from_alice(20, to=f"reply+{ticket.reply_token}@example.com"))
    )
    assert message.author_user is None and message.is_unverified_sender
    process_outbox()
    assert [r.rcpt_tos for r in smtp_server.received] == [["bob@example.com"]]
    raw = smtp_server.received[0].raw
    assert b"dana@customer.example" not in raw
    assert b"(unverified)" in raw.split(b"\r\n\r\n")[0]
    assert b"Unverified sender" in raw


def test_contact_is_marked_only_when_authentication_fails(
    aliases, route, contact, publish, attacker_key
):
    """A contact's unsigned mail is not marked; a failing signature is."""
    plain = posted(route(eml("new_ticket.eml")))
    assert plain.author_contact == contact and not plain.is_unverified_sender
    publish("customer.example", attacker_key)
    raw = sign(
        eml("new_ticket.eml").replace(b"new-ticket-1@", b"new-ticket-2@"),
        "customer.example",
        attacker_key,
    ).replace(b"blank pages", b"pay 10,000 EUR")
    failed = posted(route(raw))
    assert failed.author_contact == contact and failed.is_unverified_sender
    good = sign(
        eml("new_ticket.eml").replace(b"new-ticket-1@", b"new-ticket-3@"),
        "customer.example",
        attacker_key,
    )
    assert not posted(route(good)).is_unverified_sender


def test_second_from_above_a_replayed_signature_proves_nothing(
    aliases, route, alice, publish, dkim_test_key
):
    """A genuine example.com mail (a robot's) replayed with alice's From put above
    the signed one: the MTA's DKIM pass is for the last From, Knowlix reads the
    first, so a mail with two From fields (or two addresses) is never the user."""
    publish("example.com", dkim_test_key)
    robot = from_alice(30).replace(
        b"Alice <alice@example.com>", b"Robot <noreply@example.com>"
    )
    signer = dkim.DKIM(robot)
    signer.frozen_sign = set()  # as many signers do: From signed once, not twice
    signature = signer.sign(
        b"sel",
        b"example.com",
        dkim_test_key.private_pem.encode(),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    replayed = b"From: Alice <alice@example.com>\r\n" + signature + robot
    message = posted(route(replayed))  # dkimpy counts From as signed twice: fail
    assert message.author_user is None and message.is_unverified_sender
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")
    mta_pass = (
        b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    )
    message = posted(route(mta_pass + replayed.replace(b"forged-30@", b"forged-31@")))
    assert message.author_user is None and message.is_unverified_sender
    two_addresses = mta_pass + from_alice(32).replace(
        b"From: Alice <alice@example.com>",
        b"From: Alice <alice@example.com>, Eve <eve@evil.example>",
    )
    message = posted(route(two_addresses))
    assert message.author_user is None and message.is_unverified_sender


def test_signature_of_part_of_the_body_proves_nothing(
    aliases, route, alice, publish, dkim_test_key
):
    """A DKIM l= tag signs only the first bytes of the body: text appended to a
    genuine mail of alice's still verifies, so such a signature is no proof."""
    publish("example.com", dkim_test_key)
    raw = from_alice(40)
    signature = dkim.sign(
        raw,
        b"sel",
        b"example.com",
        dkim_test_key.private_pem.encode(),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
        length=True,
    )
    appended = signature + raw + b"\r\nPS: our bank account changed, pay to EVIL.\r\n"
    message = posted(route(appended))
    assert message.author_user is None and message.is_unverified_sender
    assert message.auth_verdict == "dkim=partial (local)"
