"""Contacts: list with search, detail, create and edit."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from feed.selectors import contact_messages
from knowlix.forms import ContactForm
from knowlix.models import Contact, MailingOptOut


def _check(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(f"knowlix.{action}_contact"):
        if action == "view":
            raise Http404("No such page")
        raise PermissionDenied("You may not change contacts.")


def contact_list(request: HttpRequest) -> HttpResponse:
    _check(request, "view")
    query = request.GET.get("q", "").strip()
    queryset = Contact.objects.all()
    if query:
        queryset = queryset.filter(
            Q(name__icontains=query)
            | Q(email__icontains=query)
            | Q(company__icontains=query)
        )
    page = Paginator(queryset.order_by("name", "pk"), 25).get_page(
        request.GET.get("page")
    )
    return render(request, "knowlix/contact_list.html", {"page": page, "query": query})


def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _check(request, "view")
    contact = get_object_or_404(Contact, pk=pk)
    assert request.user.is_authenticated  # _check: anonymous users have no perms
    feed = contact_messages(contact_id=contact.pk, user=request.user)
    opted_out = (
        MailingOptOut.objects.filter(address=contact.email_normalized).first()
        if contact.email_normalized
        else None
    )
    return render(
        request,
        "knowlix/contact_detail.html",
        {"contact": contact, "feed": feed, "opted_out": opted_out},
    )


def contact_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _check(request, "view")
    _check(request, "change" if pk else "add")
    contact = get_object_or_404(Contact, pk=pk) if pk else None
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        contact = form.save()
        messages.success(request, "Contact saved.")
        return redirect(contact.get_absolute_url())
    return render(
        request,
        "knowlix/contact_form.html",
        {"form": form, "contact": contact},
        status=400 if form.is_bound else 200,
    )
