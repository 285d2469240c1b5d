"""The on-commit trigger: a real Celery worker sends a mail right after it is queued."""

from __future__ import annotations

import time

import pytest

from knowlix import params
from knowlix.celery import app
from mailservers.models import OutgoingMail
from mailservers.services.outgoing import SEND_MAIL_TASK, MailRecipient, queue_mail


@pytest.fixture
def worker_smtp(monkeypatch, smtp_server):  # noqa: ANN001, ANN201
    """The worker process (started after this) sends to the loopback server."""
    monkeypatch.setenv("KNOWLIX_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    return smtp_server


def test_queued_mail_is_sent_by_the_worker(worker_smtp, celery_worker):  # noqa: ANN001
    """queue_mail(send_now=True) hands the mail to the worker once committed."""
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    mail = queue_mail(
        from_address="alice@catchall.test",
        recipients=[MailRecipient("dana@customer.test")],
        subject="Sent by the worker",
        body_text="Hi",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not worker_smtp.received:
        time.sleep(0.1)
    assert [r.rcpt_tos for r in worker_smtp.received] == [["dana@customer.test"]]
    while time.monotonic() < deadline:
        mail.refresh_from_db()
        if mail.state == OutgoingMail.State.SENT:
            break
        time.sleep(0.1)
    assert mail.state == OutgoingMail.State.SENT, "".join(celery_worker.log[-20:])


@pytest.mark.django_db
def test_named_send_task_runs_inline_in_eager_mode(
    smtp_server, settings, django_capture_on_commit_callbacks
):  # noqa: ANN001
    """The queue starts ``mailservers.tasks.send_mail`` by name; the name is a task
    registered in every process, so eager mode sends the mail on commit."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    assert SEND_MAIL_TASK in app.tasks
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            mail = queue_mail(
                from_address="alice@catchall.test",
                recipients=[MailRecipient("dana@customer.test")],
                subject="Sent on commit",
                body_text="Hi",
            )
    finally:
        app.conf.task_always_eager = False
    mail.refresh_from_db()
    assert mail.state == OutgoingMail.State.SENT
    assert [r.rcpt_tos for r in smtp_server.received] == [["dana@customer.test"]]
