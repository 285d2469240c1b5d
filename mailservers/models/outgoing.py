"""Outgoing mail server models (owned by the outgoing side)."""
