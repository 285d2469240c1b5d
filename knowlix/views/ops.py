"""Operations pages: the first administrator's set-up, and Prometheus metrics."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
)
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import CollectorRegistry

from knowlix import firstadmin

View = Callable[..., Any]


class FirstAdminForm(UserCreationForm):
    email = forms.EmailField(label=_("Email"))


@login_not_required
@never_cache
def first_admin(request: HttpRequest) -> HttpResponse:
    """Create the first administrator: open while no user exists, with the code."""
    code = request.GET.get("code", "")
    if not firstadmin.is_open() or not firstadmin.is_valid_code(code):
        raise Http404
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = firstadmin.create_first_admin(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except firstadmin.FirstAdminExists:
            raise Http404 from None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! You are the administrator."))
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "registration/first_admin.html", {"form": form}, status=status
    )


@functools.cache
def _knowlix_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for path in settings.KNOWLIX_METRICS_COLLECTORS:
        registry.register(import_string(path)())
    return registry


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or all gunicorn workers' in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _has_token(request: HttpRequest, token: str) -> bool:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return constant_time_compare(given.strip(), token)


def _is_this_host(request: HttpRequest) -> bool:
    """A loopback caller, and not through a proxy on the same host (which adds
    X-Forwarded-For)."""
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _may_scrape(request: HttpRequest) -> bool:
    """With KNOWLIX_METRICS_TOKEN, its bearer; without, this host only."""
    token = settings.KNOWLIX_METRICS_TOKEN
    if token:
        return _has_token(request, token)
    return _is_this_host(request)


def for_this_host_or_token(view: Callable[..., HttpResponseBase]) -> View:
    """Health checks that wait seconds for the workers' answers: this host, or the
    metrics token's bearer. Public, a few requests would tie up every gunicorn
    worker."""

    assert iscoroutinefunction(view)  # django-health-check's views are async

    @functools.wraps(view)
    async def guarded(request: HttpRequest, *args: object, **kwargs: object) -> Any:
        token = settings.KNOWLIX_METRICS_TOKEN
        if _is_this_host(request) or (token and _has_token(request, token)):
            return await view(request, *args, **kwargs)
        return HttpResponseForbidden("health: token required\n")

    return guarded


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        return HttpResponseForbidden("metrics: token required\n")
    body = generate_latest(_process_registry()) + generate_latest(_knowlix_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
