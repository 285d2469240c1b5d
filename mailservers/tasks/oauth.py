"""Celery tasks of the oauth side (thin: ids in, one service call)."""
