from django.apps import AppConfig


class KnowlixConfig(AppConfig):
    name = "knowlix"
    verbose_name = "Knowlix"
