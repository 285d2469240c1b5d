"""Shared fixtures: personas, records and the real loopback servers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from knowlix.models import Contact, Ticket
from knowlix.setup import EMPLOYEES, READ_ONLY, ensure_default_groups

pytest_plugins = [
    "tests.servers.tls_fixtures",
    "tests.servers.smtp_fixtures",
    "tests.servers.mailcatcher_fixtures",
    "tests.servers.dovecot_fixtures",
    "tests.servers.dns_fixtures",
    "tests.servers.oauth_fixtures",
    "tests.servers.celery_fixtures",
    "tests.servers.browser_fixtures",
]


@pytest.fixture
def groups(db):
    from feed.services import ensure_default_data

    ensure_default_data()
    return ensure_default_groups()


@pytest.fixture
def make_user(groups):
    """Factory: a user in the given groups (default Employees), password "pw-<name>"."""

    def make(username: str, *, group: str | None = EMPLOYEES, **fields) -> User:
        fields.setdefault("email", f"{username}@example.com")
        fields.setdefault("first_name", username.capitalize())
        user = User.objects.create_user(
            username=username, password=f"pw-{username}", **fields
        )
        if group:
            user.groups.add(groups[group])
        return user

    return make


@pytest.fixture
def alice(make_user) -> User:
    """Owns the records in the tests."""
    return make_user("alice")


@pytest.fixture
def bob(make_user) -> User:
    """Follows alice's records."""
    return make_user("bob")


@pytest.fixture
def carol(make_user) -> User:
    """An outsider: no permission on any record."""
    return make_user("carol", group=None)


@pytest.fixture
def reader(make_user) -> User:
    """May see records but not change them."""
    return make_user("reader", group=READ_ONLY)


@pytest.fixture
def admin_user(make_user) -> User:
    return make_user("admin", group=EMPLOYEES, is_staff=True, is_superuser=True)


@pytest.fixture
def make_contact(db):
    def make(name: str = "Dana Customer", email: str = "dana@customer.example", **kw):
        return Contact.objects.create(name=name, email=email, **kw)

    return make


@pytest.fixture
def contact(make_contact) -> Contact:
    return make_contact()


@pytest.fixture
def ticket(alice, contact) -> Ticket:
    """A helpdesk ticket owned by alice about the customer contact."""
    from feed.services import records as services

    return services.create_record(
        record=Ticket(subject="Printer on fire", contact=contact), author=alice
    )


@pytest.fixture
def tech_client(client, admin_user):
    """A logged-in admin with developer mode on (the technical pages)."""
    from knowlix.users import get_profile

    profile = get_profile(admin_user)
    profile.developer_mode = True
    profile.save(update_fields=["developer_mode"])
    client.force_login(admin_user)
    return client
