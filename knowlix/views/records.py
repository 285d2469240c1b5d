"""Generic list / detail / create / edit pages for every record kind.

Access comes from ``knowlix.access``: a kind the user may not view is a 404, a
read-only kind refuses writes with 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Field, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from feed.services import records as services
from knowlix.access import (
    can_add_model,
    can_change_model,
    can_view_model,
    get_model_record_for_user,
    visible_records,
)
from knowlix.decorators import AuthenticatedHttpRequest
from knowlix.forms import record_form_class
from knowlix.recordviews import RecordKind

PAGE_SIZE = 25


def _require_view(request: HttpRequest, kind: RecordKind) -> None:
    if not can_view_model(request.user, kind.model):
        raise Http404("No such page")


def record_list(request: HttpRequest, kind: RecordKind) -> HttpResponse:
    _require_view(request, kind)
    queryset = visible_records(request.user, kind.model)
    fk_fields = [c for c in kind.columns if kind.model._meta.get_field(c).is_relation]
    queryset = queryset.select_related(*fk_fields)
    query = request.GET.get("q", "").strip()
    if query:
        condition = Q()
        for field in kind.search:
            condition |= Q(**{f"{field}__icontains": query})
        queryset = queryset.filter(condition)
    page = Paginator(queryset.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [
        (obj, [_cell(obj, column) for column in kind.columns])
        for obj in page.object_list
    ]
    headers = [_field_label(kind, c) for c in kind.columns]
    return render(
        request,
        "knowlix/record_list.html",
        {
            "kind": kind,
            "page": page,
            "rows": rows,
            "headers": headers,
            "query": query,
            "can_add": can_add_model(request.user, kind.model),
        },
    )


def _field_label(kind: RecordKind, name: str) -> str:
    field = kind.model._meta.get_field(name)
    # Columns and fields name the model's own fields, never reverse relations.
    assert isinstance(field, Field)
    return str(field.verbose_name).capitalize()


def _cell(obj: object, column: str) -> str:
    display = getattr(obj, f"get_{column}_display", None)
    if display is not None:
        return str(display())
    value = getattr(obj, column)
    if isinstance(value, get_user_model()):
        return value.get_full_name() or value.get_username()
    return "" if value is None else str(value)


def record_detail(request: HttpRequest, kind: RecordKind, pk: int) -> HttpResponse:
    record = get_model_record_for_user(request.user, kind.model, pk)
    described = record.DESCRIPTION_FIELD
    fields = [
        (
            _field_label(kind, name),
            _cell(record, name),
        )
        for name in kind.fields
        if name != described
    ]
    response = render(
        request,
        "knowlix/record_detail.html",
        {
            "kind": kind,
            "record": record,
            "fields": fields,
            "description": getattr(record, described, "") if described else "",
            "has_description": bool(described),
            "record_ct_id": ContentType.objects.get_for_model(kind.model).pk,
            "can_change": can_change_model(request.user, kind.model),
        },
    )
    if getattr(request, "shows_remote_images", False):
        # The feed shows remote images the reader asked for (one message's, or a
        # sender's always; every other one is a placeholder): this page may load
        # images from https sites.
        response._csp_update = {"img-src": ["https:"]}  # type: ignore[attr-defined]
    return response


def record_create(request: AuthenticatedHttpRequest, kind: RecordKind) -> HttpResponse:
    _require_view(request, kind)
    if not can_add_model(request.user, kind.model):
        raise PermissionDenied("You may not create this kind of record.")
    form_class = record_form_class(kind)
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            record = services.create_record(
                record=form.save(commit=False), author=request.user
            )
            messages.success(request, f"{kind.verbose_name.capitalize()} created.")
            return redirect(record.get_absolute_url())
    else:
        form = form_class(initial={"owner": request.user.pk})
    return render(
        request,
        "knowlix/record_form.html",
        {"kind": kind, "form": form, "record": None},
        status=400 if form.is_bound else 200,
    )


def record_edit(
    request: AuthenticatedHttpRequest, kind: RecordKind, pk: int
) -> HttpResponse:
    record = get_model_record_for_user(request.user, kind.model, pk, write=True)
    form_class = record_form_class(kind)
    if request.method == "POST":
        form = form_class(request.POST, instance=record)
        if form.is_valid():
            services.update_record(
                record=form.save(commit=False),
                author=request.user,
                changed_fields=form.changed_data,
            )
            messages.success(request, "Changes saved.")
            return redirect(record.get_absolute_url())
    else:
        form = form_class(instance=record)
    return render(
        request,
        "knowlix/record_form.html",
        {"kind": kind, "form": form, "record": record},
        status=400 if form.is_bound else 200,
    )
