"""The site's URLs plus views that fail on purpose (tests of the error pages)."""

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from knowlix.urls import urlpatterns as site


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("database on fire")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("forged")


urlpatterns = [
    path("broken/", broken),
    path("suspicious/", suspicious),
    *site,
]
