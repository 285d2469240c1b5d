"""Tell every admin, in their inbox, that a sending domain that was valid broke.

Goes through feed's ``post_message`` (a notification on the domain's feed, which the
admins follow). feed only notifies followers holding the model's view permission,
while Settings is open to every staff user, so admins it skipped get their inbox row
here. Call inside the transaction that stored the check.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.html import escape

from dnscheck.models import SendingDomain
from dnscheck.report import DomainReport
from feed.models import Message, Notification, Subtype
from feed.services import follow, get_subtype, post_message

LABELS = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC"}


def notify_admins_of_break(
    *, domain: SendingDomain, report: DomainReport, broken: list[str]
) -> Message:
    """Post one notification on ``domain`` and put it in every active admin's inbox."""
    admins = list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(is_superuser=True))
    )
    subtype = get_subtype(Subtype.STAGE)
    for admin in admins:
        follow(record=domain, user=admin)
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
    message = post_message(
        record=domain,
        kind=Message.Kind.NOTIFICATION,
        subtype=subtype,
        subject=f"Sending domain {domain}: {names} no longer valid",
        body_html=(
            f"<p>The daily DNS check of {escape(str(domain))} found records that "
            f"were valid and are not any more:</p><ul>{items}</ul>"
            f'<p><a href="{url}">Open the domain\'s DNS page</a> to see what to '
            "publish.</p>"
        ),
    )
    notified = set(message.notifications.values_list("user_id", flat=True))
    Notification.objects.bulk_create(
        [
            Notification(message=message, user=admin, created_at=message.created_at)
            for admin in admins
            if admin.pk not in notified
        ],
        ignore_conflicts=True,
    )
    return message
