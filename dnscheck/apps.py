from django.apps import AppConfig


class DnscheckConfig(AppConfig):
    name = "dnscheck"
