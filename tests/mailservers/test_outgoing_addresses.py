"""Every address works or fails alone: IDN, SMTPUTF8, broken rows, one bad apple."""

from __future__ import annotations

import pytest

from knowlix import params
from mailservers.addresses import InvalidAddress, smtp_address
from mailservers.backends.smtp import SmtpConnection, SmtpParams
from mailservers.models import OutgoingMail, OutgoingRecipient
from mailservers.services import outbox
from mailservers.services.outgoing import MailCopy, MailRecipient, queue_mail_copies

pytestmark = pytest.mark.django_db
RAW = b"From: a@x.test\r\nTo: b@x.test\r\nSubject: t\r\n\r\nbody\r\n"


@pytest.fixture
def sink(settings, smtp_server):  # noqa: ANN001, ANN201
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return smtp_server


@pytest.mark.parametrize(
    ("address", "smtp_form", "utf8"),
    [
        ("kunde@bücher.example", "kunde@xn--bcher-kva.example", False),
        ("Kunde@BÜCHER.example", "Kunde@xn--bcher-kva.example", False),
        ("jörg@example.de", "jörg@example.de", True),
        ("o'brien+tag@example.com", "o'brien+tag@example.com", False),
    ],
)
def test_smtp_form_of_good_addresses(address, smtp_form, utf8):  # noqa: ANN001
    """IDN domains become punycode; a non-ASCII local part needs SMTPUTF8."""
    checked = smtp_address(address)
    assert (checked.addr_spec, checked.needs_smtputf8) == (smtp_form, utf8)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("bad@@x.example", "not an email address"),
        ("no-at-sign", "no @"),
        ("a@exa mple.com", "not an email address"),
        ("a@-bad-.example", "not a valid domain name"),
        ("a@localhost", "not a valid domain name"),
        ("a..b@example.com", "before the @"),
        ("x" * 65 + "@example.com", "longer than 64"),
        ("a@b.example>\r\nRCPT TO:<c@d.example", "not an email address"),
    ],
)
def test_unusable_addresses_say_why(address, reason):  # noqa: ANN001
    """Each refusal names the problem."""
    with pytest.raises(InvalidAddress) as info:
        smtp_address(address)
    assert reason in info.value.user_message


def test_smtputf8_is_asked_for_only_when_needed(sink):  # noqa: ANN001
    """With SMTPUTF8 offered, a UTF-8 recipient gets the SMTPUTF8 MAIL option."""
    sink.smtputf8 = True
    params_ = SmtpParams(host="127.0.0.1", port=sink.port, timeout=5)
    with SmtpConnection(params_) as conn:
        results = conn.send(
            mail_from="a@x.test", recipients=["jörg@example.de", "b@x.test"], raw=RAW
        )
    assert all(r.ok for r in results.values())
    assert sink.received[0].rcpt_tos == ["jörg@example.de", "b@x.test"]


def test_queue_refuses_a_bad_address_alone(sink):  # noqa: ANN001
    """One unusable address of three copies is refused; the other two are queued."""
    queued = queue_mail_copies(
        from_address="alice@catchall.test",
        copies=[
            MailCopy([MailRecipient("dana@customer.test")]),
            MailCopy([MailRecipient("bad@@customer.test")]),
            MailCopy([MailRecipient("kunde@bücher.example")]),
        ],
        subject="s",
        body_text="t",
        send_now=False,
    )
    assert [r.address for r, _reason in queued.refused] == ["bad@@customer.test"]
    outbox.process_outbox()
    assert sorted(r.rcpt_tos[0] for r in sink.received) == [
        "dana@customer.test",
        "kunde@xn--bcher-kva.example",
    ]


def test_broken_row_fails_alone_and_nothing_stays_sending(sink):  # noqa: ANN001
    """A recipient row SMTP cannot carry fails with its reason; its mail's other
    recipient and the next mail are sent; no mail is left in *sending*."""
    queued = queue_mail_copies(
        from_address="alice@catchall.test",
        copies=[
            MailCopy([MailRecipient("dana@customer.test")]),
            MailCopy([MailRecipient("erin@other.test")]),
        ],
        subject="s",
        body_text="t",
        send_now=False,
    )
    first = queued.mails[0]
    # A row written by an older version, or by hand: not an address at all.
    OutgoingRecipient.objects.create(mail=first, address="x@y@z", verp_token="f00")
    outbox.process_outbox()
    states = dict(OutgoingRecipient.objects.values_list("address", "state"))
    assert states == {
        "dana@customer.test": "sent",
        "erin@other.test": "sent",
        "x@y@z": "failed",
    }
    assert (
        "not an email address"
        in OutgoingRecipient.objects.get(address="x@y@z").last_error
    )
    assert not OutgoingMail.objects.filter(state="sending").exists()
