"""Oauth mail services."""
