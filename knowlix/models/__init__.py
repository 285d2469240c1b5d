"""Knowlix core models: contacts, the business records, profiles and parameters."""

from knowlix.models.base import Record
from knowlix.models.contacts import Contact, MailingOptOut, normalize_email
from knowlix.models.records import (
    Expense,
    Invoice,
    JobApplication,
    Mailing,
    Opportunity,
    Project,
    SalesOrder,
    Ticket,
)
from knowlix.models.system import Heartbeat, SystemParameter, UserProfile
from knowlix.models.teams import Team

__all__ = [
    "Contact",
    "Expense",
    "Heartbeat",
    "Invoice",
    "JobApplication",
    "Mailing",
    "MailingOptOut",
    "Opportunity",
    "Project",
    "Record",
    "SalesOrder",
    "SystemParameter",
    "Team",
    "Ticket",
    "UserProfile",
    "normalize_email",
]
