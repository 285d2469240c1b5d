"""Record pages: list with search and pagination, detail, create, edit, access."""

import pytest
from django.urls import reverse

from knowlix.models import Contact, Invoice, Opportunity, Ticket
from knowlix.recordviews import RECORD_KINDS


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.mark.parametrize("kind", RECORD_KINDS, ids=lambda k: k.url_name)
def test_every_kind_has_list_and_create_pages(client_alice, kind):
    """Each of the seven kinds lists and offers a form to an employee."""
    response = client_alice.get(reverse(f"knowlix:{kind.url_name}-list"))
    assert response.status_code == 200
    assert kind.verbose_name_plural.capitalize() in response.text
    response = client_alice.get(reverse(f"knowlix:{kind.url_name}-create"))
    assert response.status_code == 200
    assert "<form" in response.text


def test_create_ticket_then_edit_its_stage(client_alice, alice, contact):
    """A ticket created through the form is owned by its author and editable."""
    response = client_alice.post(
        "/helpdesk/tickets/new/",
        {"subject": "Screen flickers", "contact": contact.pk, "priority": "high",
         "stage": "new", "owner": alice.pk},
    )  # fmt: skip
    ticket = Ticket.objects.get(subject="Screen flickers")
    assert response.status_code == 302
    assert response["Location"] == f"/helpdesk/tickets/{ticket.pk}/"
    assert ticket.owner == alice and ticket.priority == "high"
    response = client_alice.post(
        f"/helpdesk/tickets/{ticket.pk}/edit/",
        {"subject": "Screen flickers", "contact": contact.pk, "priority": "high",
         "stage": "in_progress", "owner": alice.pk},
    )  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.stage == "in_progress"
    page = client_alice.get(f"/helpdesk/tickets/{ticket.pk}/")
    assert "Screen flickers" in page.text and "In progress" in page.text


def test_bad_input_is_explained_next_to_the_field(client_alice):
    """Missing title and a negative amount come back as field errors, status 400."""
    response = client_alice.post(
        "/crm/opportunities/new/",
        {"title": "", "expected_revenue": "-5", "stage": "new"},
    )
    assert response.status_code == 400
    assert "This field is required." in response.text
    assert "greater than or equal to 0" in response.text
    assert not Opportunity.objects.exists()
    response = client_alice.post(
        "/invoicing/invoices/new/",
        {"number": "INV1", "amount": "abc", "due_date": "31/31/2026", "state": "draft"},
    )
    assert response.status_code == 400
    assert "Enter a number." in response.text and "Enter a valid date." in response.text
    assert not Invoice.objects.exists()


def test_search_and_pagination(client_alice, alice):
    """Search filters by title; 30 rows paginate by 25."""
    Opportunity.objects.bulk_create(
        [Opportunity(title=f"Deal {i:02d}", owner=alice) for i in range(30)]
    )
    response = client_alice.get("/crm/opportunities/?q=Deal 07")
    assert "Deal 07" in response.text and "Deal 08" not in response.text
    first = client_alice.get("/crm/opportunities/")
    assert "1–25 of 30" in first.text
    second = client_alice.get("/crm/opportunities/?page=2")
    assert "26–30 of 30" in second.text


def test_outsider_gets_404_and_reader_gets_403(client, carol, reader, ticket):
    """No view permission hides the record; read-only refuses the edit form."""
    client.force_login(carol)
    assert client.get(f"/helpdesk/tickets/{ticket.pk}/").status_code == 404
    assert client.get("/helpdesk/tickets/").status_code == 404
    client.force_login(reader)
    assert client.get(f"/helpdesk/tickets/{ticket.pk}/").status_code == 200
    assert client.get(f"/helpdesk/tickets/{ticket.pk}/edit/").status_code == 403
    assert client.post("/helpdesk/tickets/new/", {"subject": "x"}).status_code == 403


def test_anonymous_users_are_sent_to_login(client, ticket):
    """Every page requires login."""
    response = client.get(f"/helpdesk/tickets/{ticket.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_contact_form_validates_email(client_alice):
    """A malformed email is refused next to the field."""
    response = client_alice.post(
        "/contacts/new/", {"name": "X", "email": "not-an-email"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.text
    response = client_alice.post(
        "/contacts/new/", {"name": "Ann", "email": "Ann@Ex.COM"}
    )
    assert response.status_code == 302
    assert Contact.objects.get(name="Ann").email_normalized == "ann@ex.com"
