"""WSGI entry point (gunicorn medforge.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medforge.settings")
application = get_wsgi_application()
