"""Tell every admin, in their inbox, that a sending domain that was valid broke.

Goes through ``feed.services.notify_users``: a notice on the domain for every active
admin (staff or superuser: Settings is theirs, whatever their model permissions);
its inbox link opens the domain's DNS page. Call inside the transaction that stored
the check, and only for a check that broke the domain (so one notice per break).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import escape

from dnscheck.models import SendingDomain
from dnscheck.report import DomainReport
from feed.models import Message
from feed.services import notify_users

LABELS = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC"}


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
