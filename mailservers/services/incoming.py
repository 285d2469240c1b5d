"""Incoming mail services."""
