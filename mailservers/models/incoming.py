"""Incoming mail server models (owned by the incoming side)."""
