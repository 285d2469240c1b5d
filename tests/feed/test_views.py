"""The record panel and its htmx endpoints, files, inbox and access rules."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feed import services
from feed.attachments import AttachmentInput
from feed.models import Activity, ActivityType, Message, Notification
from feed.templatetags.feed_tags import attachment_url

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name, record, **kw):
    ct = ContentType.objects.get_for_model(record)
    return reverse(f"feed:{name}", args=[ct.pk, record.pk])


def test_record_page_shows_feed(client, alice, ticket):
    """The record page includes the panel with the "created" notification."""
    client.force_login(alice)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert 'id="feed-panel"' in page
    assert "Helpdesk ticket created" in page
    assert "Send message" in page and "Log note" in page


def test_note_posted_with_htmx_returns_panel(client, alice, ticket):
    """An htmx post answers with the refreshed panel showing the note."""
    client.force_login(alice)
    response = client.post(
        url("post", ticket), {"kind": "note", "body": "Called the customer"}, **HTMX
    )
    assert response.status_code == 200
    assert "Called the customer" in response.content.decode()
    note = Message.objects.get(kind="note")
    assert (note.author_user, note.is_internal) == (alice, True)


def test_post_without_htmx_redirects_to_record(client, alice, ticket):
    """Without JavaScript the form posts and the browser comes back to the record."""
    client.force_login(alice)
    response = client.post(url("post", ticket), {"kind": "note", "body": "plain"})
    assert response.status_code == 302
    assert response["Location"].startswith(ticket.get_absolute_url())


def test_message_with_files_and_recipient(client, alice, ticket):
    """Send message with two files and an added recipient."""
    client.force_login(alice)
    files = [
        SimpleUploadedFile("quote.pdf", b"%PDF-1.4", content_type="application/pdf"),
        SimpleUploadedFile("photo.png", b"\x89PNG", content_type="image/png"),
    ]
    response = client.post(
        url("post", ticket),
        {
            "kind": "email",
            "subject": "Your quote",
            "body": "See attached https://knowlix.example/docs",
            "recipients": "erin@buyer.example",
            "attachments": files,
        },
        **HTMX,
    )
    assert response.status_code == 200
    message = Message.objects.get(kind="email")
    assert sorted(a.filename for a in message.attachments.all()) == [
        "photo.png",
        "quote.pdf",
    ]
    assert '<a href="https://knowlix.example/docs" rel="noopener noreferrer">' in (
        message.body_html
    )
    html = response.content.decode()
    assert "erin@buyer.example" in html and "quote.pdf" in html


def test_too_large_file_shows_clear_error(client, alice, ticket, settings):
    """A file above the limit re-renders the composer with the reason (422)."""
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 4
    client.force_login(alice)
    response = client.post(
        url("post", ticket),
        {
            "kind": "note",
            "body": "x",
            "attachments": [SimpleUploadedFile("a.bin", b"12345")],
        },
        **HTMX,
    )
    assert response.status_code == 422
    assert "a.bin is 5\xa0bytes; files may be at most 4\xa0bytes." in (
        response.content.decode()
    )
    assert not Message.objects.filter(kind="note").exists()


def test_typed_markup_is_shown_as_text(client, alice, ticket):
    """What a user types is text: markup in it is escaped, never executed."""
    client.force_login(alice)
    client.post(
        url("post", ticket),
        {
            "kind": "note",
            "body": "<script>alert(1)</script><img src=x onerror=alert(2)>",
        },
    )
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_received_html_renders_inert(client, alice, ticket, contact):
    """A hostile HTML mail body is stored sanitized and rendered inert."""
    services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        message_id="<x@evil.example>",
        body_html='<p>hi<svg onload=alert(1)></svg><a href="javascript:x()">y</a></p>',
    )
    client.force_login(alice)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert "onload" not in page and "javascript:x()" not in page


def test_outsider_gets_404_everywhere(client, carol, ticket):
    """Carol may not see tickets: panel, post and files are all 404."""
    message = services.post_message(
        record=ticket,
        kind="note",
        body_html="n",
        attachments=[AttachmentInput(filename="a.txt", content=b"secret")],
    )
    client.force_login(carol)
    assert client.get(url("panel", ticket)).status_code == 404
    assert (
        client.post(url("post", ticket), {"kind": "note", "body": "x"}).status_code
        == 404
    )
    file_url = attachment_url(message.attachments.get())
    assert client.get(file_url).status_code == 404
    assert Message.objects.filter(kind="note").count() == 1


def test_read_only_user_cannot_post(client, reader, ticket):
    """A read-only user sees the feed without composer and cannot post (403)."""
    client.force_login(reader)
    panel = client.get(url("panel", ticket)).content.decode()
    assert "Log note" not in panel
    response = client.post(url("post", ticket), {"kind": "note", "body": "x"})
    assert response.status_code == 403


def test_download_checks_access_and_previews_safe_types(client, alice, ticket):
    """PDFs open inline; SVG and other types are downloads, sandboxed."""
    message = services.post_message(
        record=ticket,
        kind="note",
        author=alice,
        attachments=[
            AttachmentInput(
                filename="q.pdf", content=b"%PDF", mimetype="application/pdf"
            ),
            AttachmentInput(
                filename="x.svg", content=b"<svg/>", mimetype="image/svg+xml"
            ),
        ],
    )
    pdf, svg = message.attachments.order_by("id")
    client.force_login(alice)
    response = client.get(attachment_url(pdf))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    assert b"".join(response.streaming_content) == b"%PDF"
    response = client.get(attachment_url(svg))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "sandbox"
    assert "Content-Security-Policy" not in client.get(attachment_url(pdf))


def test_cid_images_point_at_our_files(client, alice, ticket, contact):
    """An inline image referenced as cid: is served from the message's attachment."""
    message = services.post_message(
        record=ticket,
        kind="email",
        direction="in",
        author_contact=contact,
        message_id="<cid@customer.example>",
        body_html='<p><img src="cid:logo@x" alt="logo"></p>',
        attachments=[
            AttachmentInput(
                filename="logo.png",
                content=b"\x89PNG",
                mimetype="image/png",
                content_id="logo@x",
            )
        ],
    )
    client.force_login(alice)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert f'src="{attachment_url(message.attachments.get())}"' in page


def test_inbox_lists_opens_and_marks_read(client, alice, bob, ticket):
    """Bob's inbox shows the mention; opening it marks it read at the message."""
    message = services.post_message(
        record=ticket, kind="note", author=alice, body_html="<p>@bob please check</p>"
    )
    client.force_login(bob)
    inbox = client.get(reverse("feed:inbox")).content.decode()
    assert "please check" in inbox and "1 unread" in inbox
    notification = Notification.objects.get(user=bob)
    response = client.get(reverse("feed:notification-open", args=[notification.pk]))
    assert response["Location"] == (
        f"{ticket.get_absolute_url()}?message={message.pk}#message-{message.pk}"
    )
    notification.refresh_from_db()
    assert notification.is_read and notification.read_at is not None


def test_mark_all_read(client, alice, bob, ticket):
    """Mark all read clears the unread count."""
    for text in ("@bob one", "@bob two"):
        services.post_message(record=ticket, kind="note", author=alice, body_html=text)
    client.force_login(bob)
    client.post(reverse("feed:inbox-read-all"))
    assert not Notification.objects.filter(user=bob, is_read=False).exists()


def test_someone_elses_notification_is_404(client, alice, bob, ticket):
    """A notification id of another user opens nothing."""
    services.post_message(record=ticket, kind="note", author=alice, body_html="@bob x")
    notification = Notification.objects.get(user=bob)
    client.force_login(alice)
    response = client.get(reverse("feed:notification-open", args=[notification.pk]))
    assert response.status_code == 404


def test_schedule_and_mark_done(client, alice, ticket):
    """Scheduling then marking done posts the feedback and removes the activity."""
    client.force_login(alice)
    call = ActivityType.objects.get(name="Call")
    response = client.post(
        url("activity-schedule", ticket),
        {"activity_type": call.pk, "summary": "Call Dana back"},
        **HTMX,
    )
    assert "Call Dana back" in response.content.decode()
    activity = Activity.objects.get()
    assert activity.assignee == alice
    assert (activity.due_date - activity.created_at.date()).days == 2
    response = client.post(
        reverse("feed:activity-done", args=[activity.pk]),
        {"feedback": "She is happy"},
        **HTMX,
    )
    assert not Activity.objects.exists()
    done = Message.objects.get(subtype__code="activity")
    assert "Call done" in done.body_text and "She is happy" in done.body_text
    assert "She is happy" in response.content.decode()


def test_add_and_remove_follower(client, alice, bob, ticket):
    """Followers can be added (user or contact email) and removed on the record."""
    client.force_login(alice)
    client.post(url("follower-add", ticket), {"user": bob.pk}, **HTMX)
    client.post(url("follower-add", ticket), {"email": "new@buyer.example"}, **HTMX)
    from feed.models import Follower

    rows = Follower.objects.filter(object_id=ticket.pk)
    assert rows.filter(user=bob).exists()
    assert rows.filter(contact__email="new@buyer.example").exists()
    follower = rows.get(user=bob)
    client.post(reverse("feed:follower-remove", args=[follower.pk]), **HTMX)
    assert not rows.filter(user=bob).exists()


def test_xss_corpus_renders_inert_in_the_feed(client, alice, ticket, contact):
    """Every corpus payload, received as an HTML body, is inert on the record page."""
    from tests.feed.test_html import ACTIVE, XSS_CORPUS

    for i, payload in enumerate(XSS_CORPUS):
        services.post_message(
            record=ticket,
            kind="email",
            direction="in",
            author_contact=contact,
            message_id=f"<xss{i}@evil.example>",
            body_html=f"<p>payload {i}</p>{payload}",
        )
    client.force_login(alice)
    html = client.get(url("panel", ticket) + "?message=0").content.decode()
    region = html[html.index('id="feed-messages"') :]
    assert region.count("<article ") == 30  # one page
    every = region.lower()
    for marker in ACTIVE:
        assert marker not in every, marker


def test_older_messages_load_after_the_first_page(client, alice, ticket):
    """The first page holds 30 messages; "older" brings the next ones."""
    for i in range(35):
        services.post_message(
            record=ticket, kind="note", author=alice, body_html=f"n{i}"
        )
    client.force_login(alice)
    first = client.get(url("panel", ticket)).content.decode()
    assert ">n34<" in first and ">n5<" in first and ">n4<" not in first
    oldest = Message.objects.get(body_text="n5")
    older = client.get(url("messages-older", ticket), {"before": oldest.pk})
    html = older.content.decode()
    assert ">n4<" in html and ">n0<" in html and ">n5<" not in html
    assert "Helpdesk ticket created" in html
    assert "Load older messages" not in html


def test_link_to_an_old_message_shows_it(client, alice, ticket):
    """Opening the record at a message beyond the first page still shows it."""
    for i in range(40):
        services.post_message(
            record=ticket, kind="note", author=alice, body_html=f"n{i}"
        )
    target = Message.objects.get(body_text="n1")
    client.force_login(alice)
    page = client.get(
        ticket.get_absolute_url(), {"message": target.pk}
    ).content.decode()
    assert f'id="message-{target.pk}"' in page


def test_technical_message_list_needs_developer_mode(client, admin_user, alice, ticket):
    """Messages page: admins in developer mode only."""
    from knowlix.users import get_profile

    client.force_login(alice)
    assert client.get(reverse("feed:message-list")).status_code == 403
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    client.force_login(admin_user)
    page = client.get(reverse("feed:message-list")).content.decode()
    assert "Printer on fire" in page


def test_read_only_assignee_can_mark_own_activity_done(client, alice, reader, ticket):
    """Read-only access is enough to finish an activity assigned to you."""
    activity = services.schedule_activity(
        record=ticket,
        activity_type=ActivityType.objects.get(name="To-Do"),
        assignee=reader,
        created_by=alice,
    )
    client.force_login(reader)
    response = client.post(reverse("feed:activity-done", args=[activity.pk]))
    assert response.status_code == 302
    assert not Activity.objects.exists()


def test_read_only_follower_edits_own_subscription_only(client, reader, alice, ticket):
    """A read-only user changes their own subtypes, not someone else's (403)."""
    from feed.models import Follower, Subtype

    mine = services.follow(record=ticket, user=reader)
    discussion = Subtype.objects.get(code="discussion")
    client.force_login(reader)
    client.post(
        reverse("feed:follower-subtypes", args=[mine.pk]), {"subtypes": [discussion.pk]}
    )
    assert list(mine.subtypes.all()) == [discussion]
    alices = Follower.objects.get(user=alice, object_id=ticket.pk)
    response = client.post(reverse("feed:follower-remove", args=[alices.pk]))
    assert response.status_code == 403


def test_posting_needs_the_csrf_token(alice, ticket):
    """A cross-site form post without the token is refused."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(url("post", ticket), {"kind": "note", "body": "forged"})
    assert response.status_code == 403
    assert not Message.objects.filter(kind="note").exists()


def test_rows_written_around_the_service_render_sanitized(client, alice, ticket):
    """A Message created directly with raw HTML is still rendered inert."""
    from django.contrib.contenttypes.models import ContentType as CT

    Message.objects.create(
        content_type=CT.objects.get_for_model(ticket),
        object_id=ticket.pk,
        kind="notification",
        body_html='<p>raw</p><script>alert(1)</script><img src=x onerror="alert(2)">',
        message_id="<raw@test>",
    )
    client.force_login(alice)
    html = client.get(url("panel", ticket)).content.decode()
    assert "<p>raw</p>" in html
    assert "<script>alert(1)" not in html and "onerror" not in html


def test_errors_without_javascript_come_back_as_flash(client, alice, ticket):
    """A plain form post with an error returns to the record with the reason."""
    client.force_login(alice)
    response = client.post(
        url("post", ticket), {"kind": "note", "body": ""}, follow=True
    )
    assert response.redirect_chain[-1][0].startswith(ticket.get_absolute_url())
    assert "Write something or attach a file." in response.content.decode()


def test_mailings_subtype_is_offered_on_a_mailing_only(client, alice, ticket):
    """ "Mailings" is a mailing audience's subscription: a ticket's follower panel
    does not offer it and ignores it if posted anyway; a mailing offers it."""
    from feed import selectors
    from feed.models import Follower, Subtype
    from feed.services import records
    from knowlix.models import Mailing

    mailings = Subtype.objects.get(code="mailing")
    discussion = Subtype.objects.get(code="discussion")
    client.force_login(alice)
    page = client.get(ticket.get_absolute_url()).content.decode()
    choices = page.split('class="feed-subtypes"')[1].split("</form>")[0]
    assert discussion.name in choices
    assert mailings.name not in choices
    mine = Follower.objects.get(user=alice, object_id=ticket.pk)
    client.post(
        reverse("feed:follower-subtypes", args=[mine.pk]),
        {"subtypes": [discussion.pk, mailings.pk]},
    )
    assert list(mine.subtypes.all()) == [discussion]
    mailing = records.create_record(
        record=Mailing(owner=alice, subject="News", body="Hello"), author=alice
    )
    assert mailings in selectors.subtypes(record=mailing)
    assert mailings not in selectors.subtypes(record=ticket)
