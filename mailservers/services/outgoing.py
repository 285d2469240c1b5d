"""Outgoing mail services."""
