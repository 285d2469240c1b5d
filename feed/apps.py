"""The feed app: messages, followers, notifications, activities and files of records."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _forget_subtypes(**kwargs: object) -> None:
    """``migrate`` or ``flush`` may have replaced the subtype rows."""
    # Not at module level: an app config is imported before any model can be.
    from feed.defaults import clear_subtype_cache

    clear_subtype_cache()


class FeedConfig(AppConfig):
    name = "feed"

    def ready(self) -> None:
        post_migrate.connect(_forget_subtypes, sender=self)
