"""Celery tasks of the outgoing side (thin: ids in, one service call)."""
