"""Incoming mail server pages."""

urlpatterns: list = []
