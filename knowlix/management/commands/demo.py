"""Load demo data idempotently: users, contacts, a few records of each kind, aliases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from knowlix import params, services
from knowlix.models import (
    Contact,
    Expense,
    Invoice,
    JobApplication,
    Opportunity,
    Project,
    SalesOrder,
    Ticket,
)
from knowlix.setup import EMPLOYEES, ensure_default_groups
from knowlix.users import get_profile

DEMO_PASSWORD = "admin"  # noqa: S105 - demo only, printed by `make run`

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
        from feed.services import ensure_default_data

        ensure_default_data()
        if not params.get_param(params.CATCHALL_DOMAIN, default=""):
            params.set_param(params.CATCHALL_DOMAIN, params.catchall_domain())
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"first_name": "Mitchell", "last_name": "Admin",
                      "email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )  # fmt: skip
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save(update_fields=["password"])
        marc, created = User.objects.get_or_create(
            username="marc",
            defaults={
                "first_name": "Marc",
                "last_name": "Demo",
                "email": "marc@example.com",
            },
        )
        if created:
            marc.set_password("demo")  # noqa: S106 - demo only
            marc.save(update_fields=["password"])
        marc.groups.add(groups[EMPLOYEES])
        get_profile(admin)
        get_profile(marc)
        self._routing_defaults()
        from dnscheck.services import generate_dkim_key, get_active_dkim_key

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
        ]  # fmt: skip
        for record in records:
            services.create_record(record=record, author=admin)
        self.stdout.write(self.style.SUCCESS(f"Loaded {len(records)} demo records."))

    def _routing_defaults(self) -> None:
        from routing.services import ensure_default_aliases

        ensure_default_aliases()
