"""Re-check sending domains and tell every admin, in their inbox, of a break.

The layer above the checks (the daily task and ``manage.py check_dns`` call it; an
admin who clicks *Check now* sees the result on the page instead): it stores the
check through ``dnscheck.services.record_check`` and, in the same transaction, posts
a notice through ``feed.services.notify_users`` when a mechanism that was valid
broke (so one notice per break). The notice is on the domain, for every active admin
(staff or superuser: Settings is theirs, whatever their model permissions); its
inbox link opens the domain's DNS page.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils.html import escape

from dnscheck import services
from dnscheck.models import DomainCheck, SendingDomain
from dnscheck.report import DomainReport
from feed.models import Message
from feed.services import notify_users

LABELS = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC"}


def recheck_all_domains() -> int:
    """Re-check every sending domain (the daily beat job); returns how many."""
    count = 0
    for domain in SendingDomain.objects.order_by("pk").iterator():
        report = services.run_check(domain.name)  # outside any transaction
        record_check_and_notify(
            domain_id=domain.pk, report=report, trigger=DomainCheck.Trigger.SCHEDULED
        )
        count += 1
    return count


@transaction.atomic
def record_check_and_notify(
    *, domain_id: int, report: DomainReport, trigger: str
) -> DomainCheck:
    """Store the check; when it broke the domain, notify the admins (same transaction)."""
    recorded = services.record_check(
        domain_id=domain_id, report=report, trigger=trigger
    )
    if recorded.broken:
        notify_admins_of_break(
            domain=recorded.check.domain, report=report, broken=recorded.broken
        )
    return recorded.check


def notify_admins_of_break(
    *, domain: SendingDomain, report: DomainReport, broken: list[str]
) -> Message:
    """Post one notice on ``domain`` and put it in every active admin's inbox."""
    admins = get_user_model().objects.filter(
        Q(is_active=True) & (Q(is_staff=True) | Q(is_superuser=True))
    )
    names = ", ".join(LABELS[name] for name in broken)
    items = "".join(
        "<li><strong>{}</strong>: {} — {}</li>".format(
            LABELS[name],
            escape(getattr(report, name).status.label.lower()),
            escape(" ".join(getattr(report, name).problems[:1])),
        )
        for name in broken
    )
    url = escape(domain.get_absolute_url())
    return notify_users(
        target=domain,
        users=admins,
        subject=f"Sending domain {domain}: {names} no longer valid",
        body_html=(
            f"<p>The daily DNS check of {escape(str(domain))} found records that "
            f"were valid and are not any more:</p><ul>{items}</ul>"
            f'<p><a href="{url}">Open the domain\'s DNS page</a> to see what to '
            "publish.</p>"
        ),
    )
