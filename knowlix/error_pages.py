"""The app's own 404, 400 and 500 pages also when ``DEBUG`` is on (``make run``).

Django's debug pages list every URL pattern, the settings and the source around
the error: fine for a developer who asks for them (``KNOWLIX_DEBUG_PAGES=true``),
never for a user trying the demo. With ``DEBUG`` off Django already uses
``templates/404.html`` and ``500.html``; with it on:

- :class:`AppErrorPagesMiddleware` answers a URL that matches nothing, and an
  ``Http404`` raised by a view (a missing record), with ``404.html``;
- :class:`AppExceptionReporter` (``DEFAULT_EXCEPTION_REPORTER``) renders
  ``500.html`` (``400.html`` for a bad request) where Django would show its
  traceback page. The traceback is still logged (``django.request``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter


def app_pages_on() -> bool:
    return bool(settings.DEBUG and not settings.KNOWLIX_DEBUG_PAGES)


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", status=404)


class AppErrorPagesMiddleware:
    """Place after the auth and messages middleware: the 404 page has the top bar."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if app_pages_on():
            try:
                resolve(request.path_info)
            except Resolver404:
                return not_found(request)  # CommonMiddleware may still add a "/"
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if app_pages_on() and isinstance(exception, Http404):
            return not_found(request)
        return None  # Django answers (403 page, or the reporter below)


class AppExceptionReporter(ExceptionReporter):
    """What Django's debug 500 (and 400) response shows: the app's page."""

    def get_traceback_html(self) -> SafeString:
        if not app_pages_on():
            return super().get_traceback_html()
        bad_request = self.exc_type is not None and issubclass(
            self.exc_type, (SuspiciousOperation, BadRequest)
        )
        page = render_to_string("400.html" if bad_request else "500.html")
        return mark_safe(page)  # noqa: S308 - a template rendered with autoescape

    def get_traceback_text(self) -> SafeString:
        if not app_pages_on():
            return super().get_traceback_text()
        return mark_safe("Something went wrong on our side; the error was logged.\n")
