"""Mailings: the detail page (audience, Send, statistics), edit while a draft,
Send, and the public unsubscribe page of their mail.

The list and create pages are the generic record pages (``knowlix.views.records``
with ``MAILING_KIND``); ``knowlix.access`` limits every mailing page to admins.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from feed import selectors
from feed.errors import FeedError
from feed.services import mailings as services
from knowlix.access import can_change_model, get_model_record_for_user
from knowlix.decorators import AuthenticatedHttpRequest
from knowlix.models import Mailing
from knowlix.recordviews import MAILING_KIND
from knowlix.unsubscribe import read_token
from knowlix.views import records


def _mailing(request: HttpRequest, pk: int, *, write: bool = False) -> Mailing:
    record = get_model_record_for_user(request.user, Mailing, pk, write=write)
    assert isinstance(record, Mailing)
    return record


def mailing_detail(request: HttpRequest, pk: int) -> HttpResponse:
    mailing = _mailing(request, pk)
    is_draft = mailing.state == Mailing.State.DRAFT
    message = mailing.message
    return render(
        request,
        "knowlix/mailing_detail.html",
        {
            "kind": MAILING_KIND,
            "record": mailing,
            "record_ct_id": ContentType.objects.get_for_model(Mailing).pk,
            "can_change": can_change_model(request.user, Mailing) and is_draft,
            "audience_count": (
                selectors.mailing_audience(mailing).count() if is_draft else None
            ),
            "stats": None if is_draft else selectors.mailing_stats(mailing),
            "message": message,
        },
    )


def mailing_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The generic edit page, while the mailing is a draft (what was sent stays)."""
    mailing = _mailing(request, pk, write=True)
    if mailing.state != Mailing.State.DRAFT:
        messages.error(request, "A mailing that was sent can no longer be changed.")
        return redirect(mailing.get_absolute_url())
    return records.record_edit(request, MAILING_KIND, pk)


@require_POST
def mailing_send(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Send, once: the request only claims the mailing; a worker mails everyone."""
    mailing = _mailing(request, pk, write=True)
    try:
        services.start_sending(mailing=mailing, user=request.user)
    except FeedError as exc:
        messages.error(request, exc.user_message)
    else:
        messages.success(
            request, "Sending: a worker is queueing its mail; progress shows below."
        )
    return redirect(mailing.get_absolute_url())


# Exempt from CSRF on purpose: RFC 8058 one-click unsubscribe means mail clients
# (Gmail, Yahoo, Apple Mail) POST "List-Unsubscribe=One-Click" to this URL without
# any cookie or CSRF token. The proof is the signed token in the URL: it names one
# address and only that address's mail carries it, so a forged cross-site POST can
# at most do what the link's owner could do by clicking it. Nothing else on this
# page writes, and it needs no session.
@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a confirm button (link scanners must not opt anyone out); POST: out."""
    found = read_token(token)
    if found is None:
        return render(
            request, "knowlix/unsubscribe.html", {"invalid": True}, status=400
        )
    address, mailing_id = found
    done = request.method == "POST"
    if done:
        mailing = Mailing.objects.filter(pk=mailing_id).first()
        services.opt_out(address=address, mailing=mailing)
    return render(
        request, "knowlix/unsubscribe.html", {"address": address, "done": done}
    )
