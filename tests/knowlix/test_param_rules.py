"""System parameters follow one set of rules on every page, and no stored value can
break a page or a send (a full-address mail.default.from works end to end)."""

from __future__ import annotations

import email
import email.policy

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from knowlix import params
from knowlix.models import SystemParameter
from mailservers.models import OutgoingRecipient
from mailservers.services.outgoing import process_outbox

pytestmark = pytest.mark.django_db
PAGE = "/settings/technical/parameters/"


@pytest.fixture
def technical(tech_client):
    params.clear_cache()
    yield tech_client
    params.clear_cache()


def post_email(client, ticket, body: str):  # noqa: ANN001, ANN201
    """Send message from the ticket's composer, as the browser's htmx does."""
    ct = ContentType.objects.get_for_model(ticket)
    return client.post(
        reverse("feed:post", args=[ct.pk, ticket.pk]),
        {"kind": "email", "body": body},
        HTTP_HX_REQUEST="true",
    )


@pytest.fixture
def smtp(settings, smtp_server):
    settings.KNOWLIX_SMTP_URL = f"smtp://127.0.0.1:{smtp_server.port}"
    return smtp_server


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("mail.catchall.domain", "not a domain", "Enter a domain such as company.com."),
        ("mail.catchall.domain", "company", "Enter a domain such as company.com."),
        ("mail.default.from", "no reply", "or a full address such as"),
        ("mail.default.from", "a@@company.com", "or a full address such as"),
        ("mail.bounce.alias", "bounce+x", "no + or spaces"),
        ("mail.bounce.alias", "bounce@company.com", "Enter only the part before"),
        ("mail.gateway.loop.threshold", "abc", "Enter a whole number from 1"),
        ("mail.gateway.loop.minutes", "0", "Enter a whole number from 1"),
        ("mail.use_custom_servers", "maybe", "Enter true or false."),
        ("mail.gateway.loop.allowlist", "ok.example, bad@@", "neither an address"),
        ("mail.gateway.authserv_ids", "mx one", "is not an authserv-id"),
        ("mail.default.from", "  ", "Enter a value, or delete the parameter"),
    ],
)
def test_parameters_page_applies_the_rules(technical, key, value, error):
    """Each known key refuses what General Settings refuses, with the reason."""
    response = technical.post(PAGE, {"key": key, "value": value})
    assert response.status_code == 400
    assert error in response.text
    assert not SystemParameter.objects.filter(key=key).exists()


def test_editing_a_parameter_applies_the_rules(technical):
    """The edit page refuses a bad value too and keeps the stored one."""
    row = SystemParameter.objects.create(key="mail.bounce.alias", value="bounce")
    response = technical.post(f"{PAGE}{row.pk}/", {"key": row.key, "value": "a b"})
    assert response.status_code == 400 and "Enter only the part before" in response.text
    row.refresh_from_db()
    assert row.value == "bounce"


def test_unknown_keys_are_stored_as_given(technical):
    """A key Knowlix does not know has no rules."""
    response = technical.post(PAGE, {"key": "x.custom", "value": "anything at all"})
    assert response.status_code == 302
    assert params.get_param("x.custom") == "anything at all"


def test_full_address_default_from_then_a_post(technical, alice, ticket, smtp):
    """notifications@company.com set on the parameters page: Send message works and
    the rewritten mail leaves From that address."""
    response = technical.post(
        PAGE, {"key": "mail.default.from", "value": "Notifications@Company.com"}
    )
    assert response.status_code == 302
    assert params.default_from_address() == "Notifications@company.com"
    technical.force_login(alice)
    assert post_email(technical, ticket, "Your printer is fixed.").status_code == 200
    process_outbox()
    (received,) = smtp.received
    mail = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert mail["From"].addresses[0].addr_spec == "Notifications@company.com"
    assert OutgoingRecipient.objects.get().state == OutgoingRecipient.State.SENT


def test_local_part_default_from_is_at_the_catchall(technical):
    """A local part goes with the catch-all domain, as before."""
    technical.post(PAGE, {"key": "mail.catchall.domain", "value": "acme.example"})
    technical.post(PAGE, {"key": "mail.default.from", "value": "hello"})
    assert params.default_from_address() == "hello@acme.example"


def test_invalid_stored_value_falls_back_to_the_default(client, alice, ticket, smtp):
    """A bad row written straight into the database breaks no post: the default
    applies (and Send message answers 200, not 500)."""
    SystemParameter.objects.create(key="mail.default.from", value="bad value@@")
    SystemParameter.objects.create(key="mail.gateway.loop.threshold", value="lots")
    params.clear_cache()
    assert params.default_from_address().startswith("notifications@")
    assert params.get_int_param(params.LOOP_LIMIT) == 20
    client.force_login(alice)
    assert post_email(client, ticket, "hi").status_code == 200
    process_outbox()
    assert len(smtp.received) == 1


def test_general_settings_accepts_a_full_default_from(client, admin_user):
    """General Settings takes a full address as well as a local part."""
    client.force_login(admin_user)
    data = {
        "catchall_domain": "acme.example",
        "default_from": "noreply@mail.acme.example",
        "bounce_alias": "bounce",
    }
    assert client.post("/settings/", data).status_code == 302
    params.clear_cache()
    assert params.default_from_address() == "noreply@mail.acme.example"
