"""The web front as an attacker tries it: password guessing, open redirects,
oversized posts, pages for admins only, and the password reset mail."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feed.models import Message, Notification
from knowlix.users import get_profile
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db


def try_login(client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def test_fifty_wrong_passwords_lock_out_the_right_one(client, alice):
    """After the failure limit even the right password is refused (locked page)."""
    for n in range(50):
        try_login(client, "alice", f"wrong-{n}")
    response = try_login(client, "alice", "pw-alice")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_unlocks_a_locked_login(client, alice, admin_user):
    """An admin's Unlock lets the right password in again; others may not unlock."""
    for n in range(6):
        try_login(client, "alice", f"wrong-{n}")
    attempt = AccessAttempt.objects.get(username="alice")
    unlock = reverse("knowlix:locked-login-unlock", args=[attempt.pk])
    client.force_login(alice)
    assert client.post(unlock).status_code == 403
    client.logout()
    client.force_login(admin_user)
    page = client.get(reverse("knowlix:locked-logins")).content.decode()
    assert "alice" in page and "locked" in page
    assert client.post(unlock).status_code == 302
    client.logout()
    assert try_login(client, "alice", "pw-alice").status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_behind_the_proxy_a_stranger_cannot_lock_a_user_out(client, alice, settings):
    """Behind the TLS proxy every request comes from the proxy's address: the
    lockout is per browser address (the proxy's last X-Forwarded-For entry), so
    a stranger's wrong passwords lock the stranger out, not alice."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxy = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "https"}
    stranger = {**proxy, "HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.9"}
    for n in range(6):
        client.post("/login/", {"username": "alice", "password": f"x{n}"}, **stranger)
    locked = client.post(
        "/login/", {"username": "alice", "password": "pw-alice"}, **stranger
    )
    assert locked.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"
    own = {**proxy, "HTTP_X_FORWARDED_FOR": "192.0.2.44"}
    response = client.post(
        "/login/", {"username": "alice", "password": "pw-alice"}, **own
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)
    client.logout()
    # A caller reaching gunicorn directly (a public address) cannot pick its own.
    for n in range(6):
        direct = {"REMOTE_ADDR": "93.184.216.34", "HTTP_X_FORWARDED_FOR": f"10.0.0.{n}"}
        client.post("/login/", {"username": "alice", "password": f"x{n}"}, **direct)
    response = client.post(
        "/login/", {"username": "alice", "password": "pw-alice"}, **direct
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
    ],
)
def test_developer_mode_next_stays_on_this_site(client, admin_user, target):
    """The toggle's next goes only to a path of this site, else to Settings."""
    client.force_login(admin_user)
    url = reverse("knowlix:developer-mode")
    response = client.post(url, {"next": target})
    assert response["Location"] == reverse("knowlix:settings")
    response = client.post(url, {"next": "/helpdesk/tickets/?q=1"})
    assert response["Location"] == "/helpdesk/tickets/?q=1"


def test_notification_next_stays_on_this_site(client, alice, ticket):
    """The inbox's next is held to the same rule."""
    from feed import services

    services.notify_users(target=ticket, users=[alice], subject="x", body_html="y")
    note = Notification.objects.get(user=alice)
    client.force_login(alice)
    response = client.post(
        reverse("feed:notification-read", args=[note.pk]),
        {"next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("feed:inbox")


def test_post_total_size_is_limited_with_a_clear_error(client, alice, ticket, settings):
    """Four files within the per-file limit but above the per-post total: refused
    with the total and the limit, nothing posted (notes too)."""
    settings.KNOWLIX_ATTACHMENT_MAX_BYTES = 30_000
    settings.KNOWLIX_POST_MAX_BYTES = 100_000
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(ticket)
    files = [SimpleUploadedFile(f"f{n}.bin", b"x" * 29_000) for n in range(4)]
    response = client.post(
        reverse("feed:post", args=[ct.pk, ticket.pk]),
        {"kind": "note", "body": "four files", "attachments": files},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    text = re.sub(r"\s+", " ", response.content.decode().replace("\xa0", " "))
    assert "These files are 113.3 KB together" in text
    assert "at most 97.7 KB" in text
    assert not Message.objects.filter(kind="note").exists()


def test_request_above_the_limit_is_refused_before_the_view(client, alice, settings):
    """A request body above KNOWLIX_REQUEST_MAX_BYTES gets a 413 with the reason."""
    settings.KNOWLIX_REQUEST_MAX_BYTES = 50_000
    client.force_login(alice)
    response = client.post(
        "/preferences/", {"f": SimpleUploadedFile("big.bin", b"x" * 60_000)}
    )
    assert response.status_code == 413
    assert b"the limit is" in response.content


def test_local_mailbox_is_for_admins_only(client, alice, carol, admin_user):
    """Employees and outsiders get a 403; an admin sees it."""
    url = reverse("mailservers:localmailbox")
    for user in (alice, carol):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.force_login(admin_user)
    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    assert client.get(url).status_code == 200


def test_password_reset_mail_goes_through_the_queue(
    client, alice, settings, smtp_server
):
    """The reset link leaves through Knowlix's queue to the SMTP server and works."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    settings.KNOWLIX_BASE_URL = "https://crm.example.com"
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert unknown["Location"] == response["Location"]  # no account enumeration
    process_outbox()
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["alice@example.com"]
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-generated"
    body = parsed.get_body(("plain",)).get_content()
    link = re.search(r"https://crm\.example\.com(/password-reset/[^\s]+/)", body)
    assert link, body
    page = client.get(link.group(1), follow=True)
    assert b"new_password1" in page.content
    done = client.post(
        page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-secret", "new_password2": "a-new-long-secret"},
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-new-long-secret")


def test_password_reset_mails_to_one_address_are_limited(
    client, alice, settings, smtp_server
):
    """Anyone may ask for a reset link: three mails an hour, not one per request."""
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    for _n in range(6):
        response = client.post(
            reverse("password_reset"), {"email": "Alice@Example.com"}
        )
        assert response["Location"] == reverse("password_reset_done")
    process_outbox()
    assert [m.rcpt_tos for m in smtp_server.received] == [["alice@example.com"]] * 3
