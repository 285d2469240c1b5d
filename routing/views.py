"""Technical pages of routing: Aliases, and Unprocessed mail (Reprocess, Discard)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from knowlix import params
from knowlix.decorators import technical_required
from knowlix.users import person_label
from routing import services
from routing.aliases import alias_problem, save_alias
from routing.forms import AliasForm
from routing.models import Alias, UnprocessedMail

RAW_PREVIEW_BYTES = 20_000


@technical_required
def alias_list(request: HttpRequest) -> HttpResponse:
    aliases = Alias.objects.select_related(
        "content_type", "parent_content_type", "team"
    )
    rows = [(alias, alias_problem(alias)) for alias in aliases]
    return render(
        request,
        "routing/alias_list.html",
        {"rows": rows, "domain": params.catchall_domain()},
    )


@technical_required
def alias_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    alias = get_object_or_404(Alias, pk=pk) if pk is not None else None
    if request.method == "POST" and alias is not None and "delete" in request.POST:
        alias.delete()
        messages.success(request, f"Alias {alias.name} deleted.")
        return redirect("routing:alias-list")
    form = AliasForm(request.POST or None, instance=alias)
    if request.method == "POST" and form.is_valid():
        user = request.user
        assert user.is_authenticated  # technical_required
        saved = save_alias(alias=form.save(commit=False), user=user)
        messages.success(request, f"Alias {saved.name} saved.")
        return redirect("routing:alias-list")
    return render(
        request,
        "routing/alias_form.html",
        {"form": form, "alias": alias, "domain": params.catchall_domain()},
        status=400 if form.is_bound else 200,
    )


@technical_required
def unprocessed_list(request: HttpRequest) -> HttpResponse:
    rows = UnprocessedMail.objects.select_related("inbound").defer("inbound__raw")
    return render(request, "routing/unprocessed_list.html", {"rows": rows})


@technical_required
def unprocessed_detail(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(UnprocessedMail.objects.select_related("inbound"), pk=pk)
    raw = bytes(row.inbound.raw)
    preview = raw[:RAW_PREVIEW_BYTES].decode("utf-8", "replace")
    return render(
        request,
        "routing/unprocessed_detail.html",
        {"row": row, "preview": preview, "truncated": len(raw) > RAW_PREVIEW_BYTES},
    )


@technical_required
def unprocessed_raw(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(UnprocessedMail.objects.select_related("inbound"), pk=pk)
    response = HttpResponse(bytes(row.inbound.raw), content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="unprocessed-{row.pk}.eml"'
    return response


@technical_required
@require_POST
def unprocessed_reprocess(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(UnprocessedMail, pk=pk)
    result = services.reprocess_unprocessed(unprocessed=row)
    if result.outcome == "quarantined":
        messages.error(request, f"Still not routable: {result.reason}")
    else:
        messages.success(
            request, f"Reprocessed: {result.outcome}. {result.reason}".strip()
        )
    return redirect("routing:unprocessed-list")


@technical_required
@require_POST
def unprocessed_discard(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(UnprocessedMail, pk=pk)
    assert request.user.is_authenticated  # technical_required
    services.discard_unprocessed(unprocessed=row, user_label=person_label(request.user))
    messages.success(request, "Message discarded.")
    return redirect("routing:unprocessed-list")
