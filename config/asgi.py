"""ASGI entry point: uvicorn (``make run``) and gunicorn's uvicorn workers (deploy/)."""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Django runs each ASGI request's sync code in a thread of its own: a persistent connection
# would stay open in a thread that is gone. Close each at the end of its request instead.
os.environ.setdefault("CONN_MAX_AGE", "0")

application = get_asgi_application()
if settings.DEBUG:  # as runserver does; in production nginx serves /static/
    application = ASGIStaticFilesHandler(application)
