"""Load demo data idempotently: users, contacts, a few records of each kind (the
module aliases come from a migration, and are not recreated here once deleted).

Users' addresses are never at the catch-all domain: the local mail catcher routes
mail to that domain back into Knowlix, so a colleague's notification mail would come
back as a duplicate. Re-running moves addresses an older demo put there.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from dnscheck.services import generate_dkim_key
from dnscheck.signing import get_active_dkim_key
from feed.services import create_record, ensure_default_data
from knowlix import params
from knowlix.models import (
    Contact,
    Expense,
    Invoice,
    JobApplication,
    Mailing,
    Opportunity,
    Project,
    SalesOrder,
    Team,
    Ticket,
)
from knowlix.setup import EMPLOYEES, ensure_default_groups
from knowlix.users import get_profile
from routing.models import Alias

DEMO_PASSWORD = "admin"  # noqa: S105 - demo only, printed by `make run`
# The colleagues' domain; mail to it is only caught locally, never routed.
USERS_DOMAIN = "yourcompany.example"
# What older demos gave their users (then the default catch-all domain).
OLD_USERS_DOMAIN = "example.com"

CONTACTS = [
    ("Azure Interior", "info@azure-interior.example", "Azure Interior"),
    ("Deco Addict", "sales@deco-addict.example", "Deco Addict"),
    ("Gemini Furniture", "hello@gemini.example", "Gemini Furniture"),
    ("Lumber Inc", "ops@lumber.example", "Lumber Inc"),
    ("Ready Mat", "contact@readymat.example", "Ready Mat"),
]


class Command(BaseCommand):
    help = (
        "Create demo users (admin/admin, marc/demo), contacts and records. Idempotent."
    )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        groups = ensure_default_groups()
        ensure_default_data()
        if not params.get_param(params.CATCHALL_DOMAIN, default=""):
            params.set_param(params.CATCHALL_DOMAIN, params.catchall_domain())
        domain = users_domain(catchall=params.catchall_domain())
        admin = self._ensure_user(
            "admin", password=DEMO_PASSWORD, domain=domain, first_name="Mitchell",
            last_name="Admin", is_staff=True, is_superuser=True,
        )  # fmt: skip
        marc = self._ensure_user(
            "marc", password="demo", domain=domain, first_name="Marc", last_name="Demo"
        )
        marc.groups.add(groups[EMPLOYEES])
        get_profile(admin)
        get_profile(marc)
        self._team_defaults(team_members=[admin, marc])
        if get_active_dkim_key() is None:
            generate_dkim_key()  # so the Sending domains page shows the key record
        if Ticket.objects.exists():
            self.stdout.write("Demo data already loaded.")
            return
        contacts = [
            Contact.objects.create(name=n, email=e, company=c, phone="+1 555 0100")
            for n, e, c in CONTACTS
        ]
        today = timezone.localdate()
        records = [
            Opportunity(title="Office design project", contact=contacts[0],
                        expected_revenue=Decimal("24000"), stage="qualified"),
            Opportunity(title="Quote for 150 carpets", contact=contacts[1],
                        expected_revenue=Decimal("40000")),
            SalesOrder(number="S00042", customer=contacts[2], total=Decimal("1799.00")),
            SalesOrder(number="S00043", customer=contacts[0], total=Decimal("590.50"),
                       state="confirmed"),
            Invoice(number="INV/2026/0007", customer=contacts[3], amount=Decimal("1250"),
                    due_date=today + dt.timedelta(days=30), state="posted"),
            Project(name="Office renovation", manager=marc,
                    deadline=today + dt.timedelta(days=60)),
            Ticket(subject="Chair arrived broken", contact=contacts[4], priority="high",
                   assignee=marc),
            Ticket(subject="How do I reset my portal password?", contact=contacts[1]),
            Expense(description="Train ticket to customer site", employee=marc,
                    amount=Decimal("84.20")),
            JobApplication(applicant_name="Jane Candidate", email="jane@candidate.example",
                           job_position="Support engineer"),
            Mailing(subject="Our spring collection", owner=admin,
                    body="Hello,\n\nOur spring collection is in the showroom."),
        ]  # fmt: skip
        for record in records:
            create_record(record=record, author=admin)
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(records)} demo records."))

    def _ensure_user(
        self, username: str, *, password: str, domain: str, **defaults: object
    ) -> User:
        """The demo user, created with ``password``; its address moved to ``domain``
        when an older demo left it at the catch-all domain (or left none)."""
        email = f"{username}@{domain}"
        user, created = User.objects.get_or_create(
            username=username, defaults={**defaults, "email": email}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif user.email != email and is_stale_demo_email(
            user.email, catchall=params.catchall_domain()
        ):
            self.stdout.write(f"Moved {username}'s address {user.email} to {email}.")
            user.email = email
            user.save(update_fields=["email"])
        return user

    def _team_defaults(self, *, team_members: list[User]) -> None:
        """helpdesk@'s tickets go to the Helpdesk team, each member in turn (an
        alias given another team keeps it)."""
        team, created = Team.objects.get_or_create(
            name="Helpdesk", defaults={"assignment": Team.Assignment.ROUND_ROBIN}
        )
        if created:
            team.members.add(*team_members)
        Alias.objects.filter(name="helpdesk", team__isnull=True).update(team=team)


def users_domain(*, catchall: str) -> str:
    """The demo users' domain: any but the catch-all, whose mail is routed."""
    if catchall.lower() == USERS_DOMAIN:
        return f"staff.{USERS_DOMAIN}"
    return USERS_DOMAIN


def is_stale_demo_email(email: str, *, catchall: str) -> bool:
    """No address, or one at the catch-all (or older demos') domain."""
    domain = email.rpartition("@")[2].strip().lower()
    return not email or domain in {catchall.lower(), OLD_USERS_DOMAIN}
