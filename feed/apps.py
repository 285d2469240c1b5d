"""The feed app: messages, followers, notifications, activities and files of records."""

from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"
