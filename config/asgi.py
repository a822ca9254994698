"""ASGI entry point: uvicorn (``make run``) and gunicorn's uvicorn workers (deploy/)."""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()
if settings.DEBUG:  # as runserver does; in production nginx serves /static/
    application = ASGIStaticFilesHandler(application)
