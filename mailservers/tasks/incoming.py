"""Celery tasks of the incoming side (thin: ids in, one service call)."""
