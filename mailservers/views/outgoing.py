"""Outgoing mail server pages."""

urlpatterns: list = []
