"""ASGI entry point: uvicorn (``make run``) and gunicorn's uvicorn workers (deploy/)."""

import os
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from api.streamed_body import StreamedUploads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Django runs each ASGI request's sync code in a thread of its own: a persistent connection
# would stay open in a thread that is gone. Close each at the end of its request instead.
os.environ.setdefault("CONN_MAX_AGE", "0")

django_application: Any = get_asgi_application()
if settings.DEBUG:  # as runserver does; in production nginx serves /static/
    django_application = ASGIStaticFilesHandler(django_application)
# The raw upload's body streams to its view (Django would first write all of it to disk).
application = StreamedUploads(django_application)
