"""The local mail catcher and the rotate_keys command."""

from __future__ import annotations

import smtplib

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from knowlix import params
from knowlix.crypto import decrypt
from mailservers.models import CaughtMail, OutgoingServer
from mailservers.services import outbox
from mailservers.services.outgoing import MailRecipient, queue_mail


@pytest.mark.django_db(transaction=True)
def test_catcher_stores_what_it_receives(mailcatcher):  # noqa: ANN001
    """A message sent to the catcher becomes a CaughtMail with its envelope."""
    raw = b"From: A <a@x.test>\r\nTo: b@y.test\r\nSubject: Hi there\r\n\r\nBody\r\n"
    with smtplib.SMTP("127.0.0.1", mailcatcher) as conn:
        conn.login("anyone", "anything")  # any login is accepted
        conn.sendmail("a@x.test", ["b@y.test", "c@y.test"], raw)
    caught = CaughtMail.objects.get()
    assert caught.subject == "Hi there"
    assert caught.rcpt_tos == ["b@y.test", "c@y.test"]
    assert bytes(caught.raw).replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


@pytest.mark.django_db(transaction=True)
def test_queued_mail_reaches_the_local_mailbox(mailcatcher):  # noqa: ANN001
    """With nothing configured, a queued mail ends up caught locally."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    mail = queue_mail(
        from_address="alice@catchall.test",
        recipients=[MailRecipient("dana@customer.test")],
        subject="Printer on fire",
        body_html="<p>We are on it.</p>",
        send_now=False,
    )
    assert outbox.process_outbox().sent == 1
    caught = CaughtMail.objects.get()
    assert caught.message_id == mail.message_id
    assert caught.subject == "Printer on fire"


@pytest.mark.django_db
def test_rotate_keys_reencrypts_with_the_newest_key(settings):  # noqa: ANN001
    """After rotation the password decrypts with the new key alone."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.KNOWLIX_ENCRYPTION_KEY = old
    server = OutgoingServer.objects.create(name="s", host="h", password="s3cret")
    settings.KNOWLIX_ENCRYPTION_KEY = f"{new},{old}"
    call_command("rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.KNOWLIX_ENCRYPTION_KEY = new
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT password FROM mailservers_outgoingserver WHERE id = %s", [server.pk]
        )
        stored = cursor.fetchone()[0]
    assert decrypt(stored) == "s3cret"
    assert OutgoingServer.objects.get().password == "s3cret"
