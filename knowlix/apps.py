from django.apps import AppConfig

from knowlix.celery import app as celery_app


class KnowlixConfig(AppConfig):
    name = "knowlix"
    verbose_name = "Knowlix"

    def ready(self) -> None:
        # Register every app's Celery tasks in this process too (web, commands), not
        # only in workers: lower layers start tasks by name (the queue's send_mail),
        # and with CELERY_TASK_ALWAYS_EAGER a named task runs here only if registered.
        celery_app.autodiscover_tasks(force=True)
