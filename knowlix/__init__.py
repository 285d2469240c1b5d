"""Knowlix: the project package (settings, Celery app) and the business records."""

from knowlix.celery import app as celery_app

__all__ = ["celery_app"]
