"""More mailboxes routed as one group and as groups of one, that must
write the same: senders who are users, unverified senders, loop limits."""

from __future__ import annotations

import base64

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from knowlix import params
from knowlix.models import Project
from knowlix.users import get_profile
from routing.matching import TRUSTED_AUTHSERV_IDS
from routing.models import Alias
from routing.services import route_incoming_messages
from tests.routing.test_batch import Server, outcomes, snapshot
from tests.routing.test_batch import batch_world as batch_world  # noqa: F401, PLC0414


def mail(
    n: int,
    *,
    sender: str,
    auth: str = "",
    to: str = "support@mailbox.example",
    cc: str = "",
) -> bytes:
    """A new request; ``auth``: the trusted server's DMARC result, if any."""
    headers = (
        f"Authentication-Results: mx.example.com; dmarc={auth}\r\n" if auth else ""
    )
    headers += f"From: Sender {n} <{sender}>\r\nTo: {to}\r\n"
    headers += f"Cc: {cc}\r\n" if cc else ""
    return (
        f"{headers}Subject: Request {n}\r\nMessage-ID: <rq-{n}@client.example>\r\n"
        f"Content-Type: text/plain\r\n\r\nRequest {n}\r\n"
    ).encode()


def routes_the_same(raws: list[bytes]) -> list:
    """Route ``raws`` one by one, then in bulk, from the same state (rolled back);
    both must write the same. Returns the outcomes."""
    server = Server()
    with transaction.atomic():
        one_by_one = [
            route_incoming_messages(raws=[raw], source="imap:1", server=server)[0]
            for raw in raws
        ]
        expected = snapshot() | more_snapshot()
        transaction.set_rollback(True)
    with transaction.atomic():
        batched = route_incoming_messages(raws=raws, source="imap:1", server=server)
        got = snapshot() | more_snapshot()
        transaction.set_rollback(True)
    assert outcomes(batched) == outcomes(one_by_one)
    for key in expected:
        assert got[key] == expected[key], key
    return outcomes(one_by_one)


def more_snapshot() -> dict:
    """What ``snapshot`` leaves out: files, authors' details, record people."""
    from feed.models import Attachment, Message, Notification
    from knowlix.records import RECORD_MODELS
    from routing.models import InboundMail

    def people(record) -> tuple:
        return tuple(
            sorted(
                f"{field}={getattr(record, field + '_id', None) is not None}"
                for field in ("owner", "manager", "assignee", "contact", "customer")
                if hasattr(record, field + "_id")
            )
        )

    return {
        "attachments": sorted(
            (a.message.subject, a.filename, a.mimetype, a.content_id, a.blob.sha256)
            for a in Attachment.objects.select_related("message", "blob")
        ),
        "message_details": sorted(
            (
                m.subject,
                m.kind,
                m.email_from,
                m.auth_verdict,
                m.message_id if "client.example" in m.message_id else "",
                m.is_internal,
            )
            for m in Message.objects.all()
        ),
        "emailed": sorted(
            (n.user.username, n.message.subject, n.is_emailed)
            for n in Notification.objects.select_related("user", "message")
        ),
        "inbound_details": sorted(
            (i.sha256, i.message_id, i.from_address, i.subject, i.source)
            for i in InboundMail.objects.all()
        ),
        "record_people": sorted(
            (type(r).__name__, str(r), people(r))
            for model in RECORD_MODELS
            for r in model.objects.all()
        ),
    }


@pytest.fixture
def trusted(aliases):
    params.set_param(TRUSTED_AUTHSERV_IDS, "mx.example.com")


@pytest.fixture
def dave_at_the_limit(trusted, make_user) -> list[bytes]:
    """Two verified mails of the user dave, then one that fails authentication,
    with a loop limit of 2."""
    params.set_param(params.LOOP_LIMIT, "2")
    make_user("dave", email="dave@partner.example")
    return [
        mail(1, sender="dave@partner.example", auth="pass"),
        mail(2, sender="dave@partner.example", auth="pass"),
        mail(3, sender="dave@partner.example", auth="fail"),
    ]


def test_unverified_mail_from_a_users_address_is_loop_limited(dave_at_the_limit):
    """A user's verified mail counts towards the address's loop limit, and mail
    from that address that fails authentication is no user's: it is refused once
    the limit is reached, in bulk as one by one."""
    one_by_one = routes_the_same(dave_at_the_limit)
    assert [o for o, _r, _routes in one_by_one] == ["routed", "routed", "refused"]


def test_mixed_mailbox_writes_the_same_files_and_people(batch_world):
    """The mixed mailbox of test_batch: its attachments, authors' details and
    records' people are the same too."""
    routes_the_same(batch_world)


def test_contact_of_a_loop_limited_sender_is_seen_by_later_mail(dave_at_the_limit):
    """A mail refused for its sender's loop limit still creates the sender's contact
    (one by one, before the refusal): a later mail naming the sender in Cc links it
    as a known contact, who starts following that record."""
    later = mail(4, sender="gina@partner.example", cc="dave@partner.example")
    one_by_one = routes_the_same([*dave_at_the_limit, later])
    assert [o for o, _r, _routes in one_by_one][2:] == ["refused", "routed"]


def attached(
    n: int, *, sender: str, to: str = "support@mailbox.example", cc: str = ""
) -> bytes:
    """A request with a PDF (the same in every one) and an inline image."""
    pdf = base64.b64encode(b"%PDF-1.4 same bytes " * 40).decode()
    headers = f"From: Att {n} <{sender}>\r\nTo: {to}\r\n" + (
        f"Cc: {cc}\r\n" if cc else ""
    )
    return (
        f"{headers}Subject: Attached {n}\r\nMessage-ID: <att-{n}@client.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        f'--zz\r\nContent-Type: text/html\r\n\r\n<p>See @alice <img src="cid:logo"></p>\r\n'
        f"--zz\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n"
        f"--zz\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(b'PNG' + bytes([n])).decode()}\r\n"
        "--zz--\r\n"
    ).encode()


def test_users_aliases_and_files_route_the_same(
    trusted, make_user, make_contact, alice
):
    """Senders who are users (verified or not, active or not), two contacts of one
    address, an alias without contact field and with defaults, an inactive alias,
    shared attachments, loop limits: bulk and one by one write the same."""
    params.set_param(params.LOOP_LIMIT, "3")
    make_user("dave", email="dave@partner.example")
    make_user("erin", email="erin@partner.example", is_active=False)
    profile = get_profile(alice)
    profile.notify_by = profile.NotifyBy.EMAIL
    profile.save()
    make_contact(name="Old Gina", email="gina@partner.example")
    make_contact(name="New Gina", email="Gina@partner.example")
    projects = ContentType.objects.get_for_model(Project)
    Alias.objects.create(
        name="projects", content_type=projects, defaults={"manager_id": alice.pk}
    )
    Alias.objects.create(name="old", content_type=projects, is_active=False)
    raws = [
        mail(
            1,
            sender="dave@partner.example",
            auth="pass",
            cc="gina@partner.example, erin@partner.example",
        ),
        mail(
            2,
            sender="erin@partner.example",
            auth="pass",
            to="projects@example.com, old@example.com",
        ),
        mail(3, sender="dave@partner.example", auth="fail", to="projects@example.com"),
        attached(
            4, sender="gina@partner.example", cc="dave@partner.example, x@example.com"
        ),
        attached(
            5,
            sender="newbie@partner.example",
            to="old@example.com, sales+x@example.com",
        ),
        mail(
            6,
            sender="Dave@Partner.example",
            auth="pass",
            to="projects@example.com",
            cc="alice@example.com",
        ),
        mail(
            7,
            sender="gina@partner.example",
            to="projects@example.com",
            cc="newbie@partner.example",
        ),
        mail(8, sender="newbie@partner.example", to="helpdesk@example.com"),
        mail(9, sender="zed@partner.example", to="old@example.com"),
        mail(10, sender="zed@partner.example", auth="pass"),
        mail(11, sender="zed@partner.example", auth="fail"),
        mail(12, sender="zed@partner.example"),
        mail(13, sender="zed@partner.example"),
    ]
    routes_the_same(raws)


def test_forwards_policies_and_invalid_aliases_route_the_same(
    trusted, ticket, alice, bob, make_contact
):
    """Forwards and Cc'd replies, two mails posting on one fixed record (the second
    sees the first), a followers-only alias with a parent, an alias gone invalid,
    data: images and charsets: a group writes what groups of one write."""
    from feed.models import Message
    from feed.services import follow, post_message
    from feed.services import records as record_services
    from knowlix.models import Ticket
    from tests.routing.conftest import DATA, eml

    parent = post_message(
        record=ticket, kind=Message.Kind.EMAIL, author=alice, body_html="<p>On it</p>"
    )
    tickets = ContentType.objects.get_for_model(Ticket)
    Alias.objects.create(
        name="printer",
        content_type=tickets,
        object_id=ticket.pk,
        contact_policy=Alias.ContactPolicy.KNOWN,
    )
    project = record_services.create_record(record=Project(name="Acme"), author=alice)
    follow(record=project, contact=make_contact("Rita", "rita@recruit.example"))
    Alias.objects.create(
        name="acme",
        content_type=tickets,
        parent_content_type=ContentType.objects.get_for_model(Project),
        parent_object_id=project.pk,
        contact_policy=Alias.ContactPolicy.FOLLOWERS,
    )
    Alias.objects.create(
        name="gone", content_type=tickets, defaults={"assignee": bob.pk}
    )
    bob.delete()
    raws = [
        eml("reply_to_other_kind.eml", parent=parent.message_id),
        eml("forward_to_other_kind.eml", parent=parent.message_id),
        mail(1, sender="dana@customer.example", to="printer@example.com"),
        mail(2, sender="dana@customer.example", to="printer@example.com"),
        mail(3, sender="newbie@else.example", to="printer@example.com"),
        mail(4, sender="rita@recruit.example", auth="pass", to="acme@example.com"),
        mail(5, sender="stranger@else.example", to="acme@example.com"),
        mail(6, sender="dana@customer.example", to="gone@example.com"),
        mail(7, sender="dana@customer.example", to="gone@example.com"),
        (DATA / "routing" / "data_image.eml").read_bytes(),
        (DATA / "routing" / "charsets" / "windows-874.eml").read_bytes(),
        (DATA / "routing" / "bare_content_type.eml").read_bytes(),
    ]
    got = routes_the_same(raws)
    assert [o for o, _r, _routes in got] == [
        "routed",
        "routed",
        "routed",
        "routed",
        "refused",
        "routed",
        "refused",
        "quarantined",
        "quarantined",
        "routed",
        "routed",
        "routed",
    ]
    assert got[0][2] == [("created", "knowlix.opportunity")]
    assert got[1][2] == [("posted", "knowlix.ticket")]
