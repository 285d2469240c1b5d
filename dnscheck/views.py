"""Settings → Sending domains: statuses, the records to publish, Check now, history.

Admins only. Views are thin: parse input, call one service, pick the response.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dnscheck import selectors, services, signing
from dnscheck.errors import DnsCheckError
from dnscheck.forms import SendingDomainForm
from dnscheck.models import DomainCheck, SendingDomain
from knowlix.decorators import AuthenticatedHttpRequest, admin_required

HISTORY_LENGTH = 30


def _knowlix_key_context() -> dict[str, object]:
    key = signing.get_active_dkim_key()
    selector = settings.KNOWLIX_DKIM_SELECTOR
    return {
        "dkim_key": key,
        "dkim_key_name": f"{selector}._domainkey.{settings.KNOWLIX_DKIM_TARGET_DOMAIN}.",
    }


def _render_list(
    request: HttpRequest, form: SendingDomainForm, status: int = 200
) -> HttpResponse:
    context = {
        "domains": selectors.list_sending_domains(),
        "form": form,
        **_knowlix_key_context(),
    }
    return render(request, "dnscheck/domain_list.html", context, status=status)


@admin_required
def domain_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, SendingDomainForm())


@admin_required
@require_POST
def domain_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SendingDomainForm(request.POST)
    if form.is_valid():
        try:
            domain = services.add_sending_domain(
                name=form.cleaned_data["name"], user=request.user
            )
        except DnsCheckError as exc:
            form.add_error("name", exc.user_message)
        else:
            messages.success(request, f"{domain} added and checked.")
            return redirect(domain.get_absolute_url())
    return _render_list(request, form, status=400)


@admin_required
def domain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(SendingDomain, pk=pk)
    report = domain.report
    context = {
        "domain": domain,
        "mechanisms": report.mechanisms() if report else [],
        "history": selectors.get_domain_history(domain=domain, limit=HISTORY_LENGTH),
        **_knowlix_key_context(),
    }
    return render(request, "dnscheck/domain_detail.html", context)


@admin_required
@require_POST
def domain_check(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(SendingDomain, pk=pk)
    check = services.check_sending_domain(
        domain=domain, trigger=DomainCheck.Trigger.MANUAL
    ).check
    if check.is_valid:
        messages.success(request, f"{domain}: SPF, DKIM and DMARC are valid.")
    else:
        messages.warning(request, f"{domain} checked: some records need attention.")
    return redirect(domain.get_absolute_url())


@admin_required
@require_POST
def domain_delete(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(SendingDomain, pk=pk)
    services.delete_sending_domain(domain=domain)
    messages.success(request, f"{domain} removed: Knowlix no longer signs its mail.")
    return redirect("dnscheck:domain-list")
