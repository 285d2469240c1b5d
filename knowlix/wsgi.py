"""WSGI entry point (gunicorn knowlix.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "knowlix.settings")
application = get_wsgi_application()
