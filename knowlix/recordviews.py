"""How each record kind appears: list columns, search fields, form fields, its app.

One table drives the generic list/detail/create/edit views in ``knowlix.views.records``
and the top bar, so adding a record kind is one entry here plus its model.
"""

from __future__ import annotations

from dataclasses import dataclass

from knowlix.models import (
    Expense,
    Invoice,
    JobApplication,
    Mailing,
    Opportunity,
    Project,
    Record,
    SalesOrder,
    Ticket,
)


@dataclass(frozen=True)
class RecordKind:
    model: type[Record]
    app: str  # the top bar's app name
    app_slug: str  # first URL segment
    slug: str  # second URL segment (plural)
    columns: tuple[str, ...]
    search: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def url_name(self) -> str:
        return self.model.URL_NAME

    @property
    def verbose_name(self) -> str:
        return str(self.model._meta.verbose_name)

    @property
    def verbose_name_plural(self) -> str:
        return str(self.model._meta.verbose_name_plural)


RECORD_KINDS: tuple[RecordKind, ...] = (
    RecordKind(
        Opportunity, "CRM", "crm", "opportunities",
        ("title", "contact", "expected_revenue", "stage"),
        ("title", "contact__name", "contact__email"),
        ("title", "contact", "expected_revenue", "stage", "owner", "description"),
    ),
    RecordKind(
        SalesOrder, "Sales", "sales", "orders",
        ("number", "customer", "total", "state"),
        ("number", "customer__name"),
        ("number", "customer", "total", "state", "owner"),
    ),
    RecordKind(
        Invoice, "Invoicing", "invoicing", "invoices",
        ("number", "customer", "amount", "due_date", "state"),
        ("number", "customer__name"),
        ("number", "customer", "amount", "due_date", "state", "owner"),
    ),
    RecordKind(
        Project, "Projects", "projects", "projects",
        ("name", "manager", "deadline"),
        ("name",),
        ("name", "manager", "deadline", "owner"),
    ),
    RecordKind(
        Ticket, "Helpdesk", "helpdesk", "tickets",
        ("subject", "contact", "priority", "stage", "assignee"),
        ("subject", "contact__name", "contact__email"),
        ("subject", "contact", "priority", "stage", "assignee", "owner",
         "description"),
    ),
    RecordKind(
        Expense, "Expenses", "expenses", "expenses",
        ("description", "employee", "amount", "state"),
        ("description",),
        ("description", "employee", "amount", "state", "owner"),
    ),
    RecordKind(
        JobApplication, "Recruitment", "recruitment", "applications",
        ("applicant_name", "email", "job_position", "stage"),
        ("applicant_name", "email", "job_position"),
        ("applicant_name", "email", "job_position", "stage", "contact", "owner"),
    ),
)  # fmt: skip

KIND_BY_MODEL: dict[type[Record], RecordKind] = {k.model: k for k in RECORD_KINDS}

# Mailings are admin-only marketing records with pages of their own (audience,
# Send, statistics; ``knowlix.views.mailings``); the generic list, create and edit
# pages serve them too. Not in RECORD_KINDS: no top-bar app for everyone.
MAILING_KIND = RecordKind(
    Mailing, "Mailings", "marketing", "mailings",
    ("subject", "audience", "state", "sent_at"),
    ("subject", "company"),
    ("subject", "audience", "company", "body", "owner"),
)  # fmt: skip
