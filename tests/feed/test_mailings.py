"""Mailings: one mail per audience contact through the real queue and a loopback
SMTP sink, each with its own signed one-click unsubscribe link; sent once; opted-out
and bouncing addresses left out of later mailings but not of transactional mail.

Kill and resume of a big mailing is the follower fan-out's (``feed.fanout``,
``tests/feed/test_fanout.py``): a mailing is a post to its audience as followers.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from feed import fanout, selectors, tasks
from feed.errors import EmptyAudience, MailingNotDraft
from feed.models import Message
from feed.services import create_record, follow, post_message
from feed.services import mailings as services
from knowlix import params
from knowlix.models import Contact, Mailing, MailingOptOut
from knowlix.unsubscribe import UnsubscribeLinks, read_token
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db

AUDIENCE = 6
URL = re.compile(r"https?://[^\s<>\"]+/unsubscribe/([A-Za-z0-9_.:-]+)/")


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    settings.KNOWLIX_BASE_URL = "https://crm.example.com"
    params.set_param(params.CATCHALL_DOMAIN, "catchall.test")
    return smtp_server


@pytest.fixture
def customers(make_contact) -> list[Contact]:
    """Six customers at Acme with an address each, and two that get no mailing."""
    people = [
        make_contact(name=f"Customer {n}", email=f"c{n}@acme.example", company="Acme")
        for n in range(AUDIENCE)
    ]
    make_contact(name="No address", email="", company="Acme")
    make_contact(name="Bouncing", email="gone@acme.example", bounce_count=5)
    return people


def new_mailing(author, **fields) -> Mailing:  # noqa: ANN001
    values = {"subject": "Our spring news", "body": "Hello!\n\nWe moved.", **fields}
    mailing = create_record(record=Mailing(owner=author, **values), author=author)
    assert isinstance(mailing, Mailing)
    return mailing


def send(mailing: Mailing, user) -> Message:  # noqa: ANN001
    """The Send click, then the worker's task (and the fan-out's, when big)."""
    services.start_sending(mailing=mailing, user=user)
    tasks.send_mailing(mailing.pk)
    mailing.refresh_from_db()
    assert mailing.message is not None
    if mailing.message.is_fanning_out:
        tasks.fan_out_message(mailing.message.pk)
        mailing.refresh_from_db()
    return mailing.message


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def bodies(mail: email.message.EmailMessage) -> list[str]:
    return [p.get_content() for p in mail.walk() if not p.is_multipart()]


def test_each_contact_gets_its_own_mail_with_a_one_click_unsubscribe(
    admin_user, customers, contact, smtp
):  # noqa: ANN001
    """To: the contact alone, VERP envelope, List-Unsubscribe(-Post) and a footer
    link, both the contact's own signed link; the mailing ends sent with stats."""
    mailing = new_mailing(admin_user)
    send(mailing, admin_user)
    assert mailing.state == Mailing.State.SENT
    process_outbox()
    received = {r.rcpt_tos[0]: r for r in smtp.received}
    expected = {c.email for c in customers} | {contact.email}
    assert set(received) == expected and len(smtp.received) == len(expected)
    for address, item in received.items():
        mail = parse(item.raw)
        assert [a.addr_spec for a in mail["To"].addresses] == [address]
        assert item.mail_from.startswith("bounce+")  # VERP: the bounce names it
        assert mail["Subject"] == "Our spring news"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = URL.search(mail["List-Unsubscribe"])
        assert header is not None and mail["List-Unsubscribe"].startswith("<https")
        assert read_token(header.group(1)) == (address, mailing.pk)
        for body in bodies(mail):  # text and HTML: the same link, no placeholder
            assert header.group(0) in body and "placeholder" not in body
            assert "We moved." in body
        others = expected - {address}
        assert not any(other.encode() in item.raw for other in others)
    stats = selectors.mailing_stats(mailing)
    assert (stats.audience, stats.sent, stats.queued, stats.failed) == (7, 7, 0, 0)


def test_a_big_mailing_is_fanned_out_by_the_task_and_each_contact_mailed_once(
    admin_user, customers, smtp, monkeypatch
):  # noqa: ANN001
    """Above the inline limit the post returns with the fan-out pending; the
    fan-out task mails every contact once and the mailing becomes sent."""
    monkeypatch.setattr(fanout, "INLINE_FOLLOWERS", 2)
    monkeypatch.setattr(fanout, "CHUNK", 2)
    mailing = new_mailing(admin_user, audience="company", company="acme")
    services.start_sending(mailing=mailing, user=admin_user)
    message = services.post_mailing(mailing_id=mailing.pk)
    assert message is not None and message.fanout_total == AUDIENCE
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.SENDING
    assert not OutgoingRecipient.objects.exists()
    # One chunk (a range of the mailing's followers: its author's follow, not
    # subscribed to mailings, may be one of them), then a worker killed.
    assert fanout._fan_out_chunk(message.pk, 2) in (1, 2)
    message.refresh_from_db()
    assert 0 < message.fanout_done < AUDIENCE
    assert OutgoingRecipient.objects.count() == message.fanout_done
    tasks.fan_out_message(message.pk)  # the task runs again: the rest only
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.SENT
    process_outbox()
    mailed = Counter(r.rcpt_tos[0] for r in smtp.received)
    assert set(mailed) == {c.email for c in customers} and max(mailed.values()) == 1
    assert all(b"List-Unsubscribe-Post" in r.raw for r in smtp.received)


def test_send_twice_is_refused_and_posts_once(client, admin_user, customers, smtp):  # noqa: ANN001
    """A second Send (or the task run twice) sends nothing more."""
    mailing = new_mailing(admin_user)
    client.force_login(admin_user)
    url = reverse("knowlix:mailing-send", args=[mailing.pk])
    assert client.post(url).status_code == 302
    tasks.send_mailing(mailing.pk)
    tasks.send_mailing(mailing.pk)  # redelivered task: nothing more
    page = client.post(url, follow=True)
    assert "already been sent" in page.text
    with pytest.raises(MailingNotDraft):
        services.start_sending(mailing=mailing, user=admin_user)
    assert Message.objects.filter(subject="Our spring news").count() == 1
    process_outbox()
    assert len(smtp.received) == AUDIENCE


def test_a_mailing_whose_task_was_lost_is_sent_by_the_beat(
    admin_user, customers, smtp, monkeypatch
):  # noqa: ANN001
    """Send claimed it, the worker died before its post committed: the beat starts
    the task again after 5 minutes, and the mailing goes out once."""
    import datetime as dt

    from django.utils import timezone

    started: list[int] = []
    monkeypatch.setattr(services, "_start_task", started.append)
    mailing = new_mailing(admin_user)
    services.start_sending(mailing=mailing, user=admin_user)
    assert services.resume_stalled_mailings() == 0  # too early: it may be running
    Mailing.objects.filter(pk=mailing.pk).update(
        sent_at=timezone.now() - dt.timedelta(minutes=6)
    )
    assert services.resume_stalled_mailings() == 1 and started == [mailing.pk]
    tasks.send_mailing(mailing.pk)
    tasks.send_mailing(mailing.pk)
    assert services.resume_stalled_mailings() == 0
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.SENT
    process_outbox()
    assert len(smtp.received) == AUDIENCE


def test_an_empty_audience_cannot_be_sent(admin_user, customers):  # noqa: ANN001
    """A company with no contact: Send explains, the mailing stays a draft."""
    mailing = new_mailing(admin_user, audience="company", company="Nobody Inc")
    with pytest.raises(EmptyAudience):
        services.start_sending(mailing=mailing, user=admin_user)
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.DRAFT


def test_audience_one_per_address_no_bounces_no_opt_outs(
    admin_user, customers, make_contact
):  # noqa: ANN001
    """Company filter (any case), one contact per address, bouncing and opted-out
    addresses and contacts without an address left out."""
    make_contact(name="Twin", email="C0@acme.example", company="Acme")
    make_contact(name="Elsewhere", email="e@other.example", company="Other")
    MailingOptOut.objects.create(address="c1@acme.example")
    mailing = new_mailing(admin_user, audience="company", company="ACME")
    audience = list(selectors.mailing_audience(mailing))
    addresses = sorted(c.email_normalized for c in audience)
    assert addresses == sorted(f"c{n}@acme.example" for n in range(AUDIENCE) if n != 1)
    assert customers[0] in audience  # the oldest of the two with c0@


def test_the_audience_gets_nothing_else_from_the_mailing_feed(
    admin_user, customers, smtp
):  # noqa: ANN001
    """A later email on the mailing (say, answering one reply) reaches its typed
    recipient only, never the whole audience."""
    mailing = new_mailing(admin_user)
    send(mailing, admin_user)
    process_outbox()
    smtp.reset()
    post_message(
        record=mailing,
        kind="email",
        author=admin_user,
        body_html="<p>Thanks for asking.</p>",
        recipients=["c2@acme.example"],
    )
    process_outbox()
    assert [r.rcpt_tos for r in smtp.received] == [["c2@acme.example"]]
    assert b"List-Unsubscribe" not in smtp.received[0].raw


def test_unsubscribe_get_confirms_post_opts_out_without_csrf(
    admin_user, customers, contact, ticket, alice, smtp
):  # noqa: ANN001
    """GET asks (a link scanner opts nobody out); the one-click POST, with no CSRF
    token or cookie, opts out; the next mailing leaves the address out, while a
    reply on a ticket still reaches it."""
    mailing = new_mailing(admin_user)
    token = UnsubscribeLinks(mailing_id=mailing.pk).token(contact.email)
    url = f"/unsubscribe/{token}/"
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(url)
    assert page.status_code == 200 and "Unsubscribe</button>" in page.text
    assert contact.email in page.text and not MailingOptOut.objects.exists()
    done = anonymous.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "will receive no more mailings" in done.text
    assert MailingOptOut.objects.get().address == contact.email
    assert anonymous.post(url).status_code == 200  # twice: still fine, one row
    assert MailingOptOut.objects.count() == 1
    assert selectors.mailing_stats(mailing).opted_out == 1
    staff = Client()
    staff.force_login(admin_user)
    shown = staff.get(contact.get_absolute_url()).text
    assert 'data-test="contact-mailings">' in shown and "Unsubscribed" in shown

    later = new_mailing(admin_user, subject="Summer news")
    assert contact not in selectors.mailing_audience(later)
    send(later, admin_user)
    post_message(record=ticket, kind="email", author=alice, body_html="<p>Fixed.</p>")
    process_outbox()
    to_contact = [r for r in smtp.received if r.rcpt_tos == [contact.email]]
    assert len(to_contact) == 1 and b"Fixed." in to_contact[0].raw
    assert b"Summer news" not in to_contact[0].raw


@pytest.mark.parametrize(
    "token",
    ["nonsense", "ZGFuYUBjdXN0b21lci5leGFtcGxl.1:forgedsignature", "a" * 300],
)
def test_a_bad_or_forged_token_is_refused_with_a_clear_page(token, customers):  # noqa: ANN001
    """Neither GET nor POST opts anyone out with a token we did not sign."""
    anonymous = Client(enforce_csrf_checks=True)
    for response in (
        anonymous.get(f"/unsubscribe/{token}/"),
        anonymous.post(f"/unsubscribe/{token}/"),
    ):
        assert response.status_code == 400
        assert "This unsubscribe link is not valid" in response.text
    assert not MailingOptOut.objects.exists()


def test_a_token_of_another_salt_is_refused(customers):  # noqa: ANN001
    """A value signed by the site for something else is not an unsubscribe token."""
    from django.core import signing

    other = signing.Signer(algorithm="sha256").sign("ZGFuYUBjdXN0b21lci5leGFtcGxl.1")
    assert read_token(other) is None
    assert Client().post(f"/unsubscribe/{other}/").status_code == 400


def test_a_token_is_the_signature_django_makes_and_reads_back(settings):  # noqa: ANN001
    """The links' precomputed HMAC signs as ``django.core.signing.Signer`` with the
    unsubscribe salt would (so links stay valid), under the current key, and a
    link made before a key rotation still reads under ``SECRET_KEY_FALLBACKS``."""
    from django.core import signing

    from knowlix import unsubscribe

    address = "Dana.Smith+news@Customer.example"
    token = UnsubscribeLinks(mailing_id=7).token(address)
    value = token.rpartition(":")[0]
    assert token == unsubscribe._signer().sign(value)
    assert read_token(token) == ("dana.smith+news@customer.example", 7)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "a-new-key" * 6,
        [settings.SECRET_KEY],
    )
    rotated = UnsubscribeLinks(mailing_id=7).token(address)
    assert rotated != token
    assert rotated == signing.Signer(salt=unsubscribe.SALT, algorithm="sha256").sign(
        value
    )
    assert (
        read_token(token)
        == read_token(rotated)
        == (
            "dana.smith+news@customer.example",
            7,
        )
    )


def test_only_admins_see_create_and_send_mailings(client, alice, admin_user, customers):  # noqa: ANN001
    """An employee gets 404 everywhere and no menu entry; an admin gets the pages,
    the audience count and the confirmation."""
    mailing = new_mailing(admin_user)
    urls = [
        reverse("knowlix:mailing-list"),
        reverse("knowlix:mailing-create"),
        mailing.get_absolute_url(),
        reverse("knowlix:mailing-edit", args=[mailing.pk]),
    ]
    client.force_login(alice)
    assert all(client.get(url).status_code == 404 for url in urls)
    assert (
        client.post(reverse("knowlix:mailing-send", args=[mailing.pk])).status_code
        == 404
    )
    assert "Mailings" not in client.get("/").text
    ct = ContentType.objects.get_for_model(Mailing)
    assert (
        client.get(reverse("feed:panel", args=[ct.pk, mailing.pk])).status_code == 404
    )
    mailing.refresh_from_db()
    assert mailing.state == Mailing.State.DRAFT

    client.force_login(admin_user)
    assert all(client.get(url).status_code == 200 for url in urls)
    page = client.get(mailing.get_absolute_url()).text
    assert 'data-test="audience-count">6<' in page
    assert "to 6 contacts? It is sent once" in page
    assert reverse("knowlix:mailing-list") in client.get("/").text


def test_create_page_makes_a_draft_and_a_sent_mailing_cannot_be_edited(
    client, admin_user, customers, smtp
):  # noqa: ANN001
    """The form needs a company for a company audience; once sent, Edit is gone."""
    client.force_login(admin_user)
    create = reverse("knowlix:mailing-create")
    form = {"subject": "Offer", "body": "Hi", "audience": "company", "company": ""}
    refused = client.post(create, {**form, "owner": admin_user.pk})
    assert refused.status_code == 400 and "Name the company." in refused.text
    done = client.post(create, {**form, "company": "Acme", "owner": admin_user.pk})
    mailing = Mailing.objects.get(subject="Offer")
    assert done.status_code == 302 and mailing.state == Mailing.State.DRAFT
    send(mailing, admin_user)
    edit = client.get(reverse("knowlix:mailing-edit", args=[mailing.pk]), follow=True)
    assert "can no longer be changed" in edit.text
    page = client.get(mailing.get_absolute_url()).text
    assert 'data-test="mailing-stats"' in page and "Opted out" in page
    assert ">Edit<" not in page


def test_a_manually_added_follower_outside_the_audience_is_not_mailed(
    admin_user, customers, contact, smtp
):  # noqa: ANN001
    """Someone who opted out and was then added as a follower with every
    subscription still gets no mailing; a follower added by hand who is in the
    audience gets it once."""
    from feed.services import get_subtype

    MailingOptOut.objects.create(address=contact.email)
    mailing = new_mailing(admin_user)
    follow(record=mailing, contact=contact, subtypes=[get_subtype("mailing")])
    follow(record=mailing, contact=customers[0])
    send(mailing, admin_user)
    process_outbox()
    mailed = Counter(r.rcpt_tos[0] for r in smtp.received)
    assert contact.email not in mailed and customers[0].email in mailed
    assert len(mailed) == AUDIENCE and max(mailed.values()) == 1
