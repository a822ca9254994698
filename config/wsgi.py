"""WSGI entry point (gunicorn ``config.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()

# A web process starts (also when gunicorn replaces a killed worker): remove what killed
# processes left in the upload spool.
from api.storage.spool import spool_sweep_at_start  # noqa: E402

spool_sweep_at_start()

# What the process built at start lives as long as it: no collection walks it again.
from config.heap import freeze_startup_heap  # noqa: E402

freeze_startup_heap()
