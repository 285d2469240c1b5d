"""Oauth mail server pages."""

urlpatterns: list = []
