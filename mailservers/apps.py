from django.apps import AppConfig


class MailserversConfig(AppConfig):
    name = "mailservers"
