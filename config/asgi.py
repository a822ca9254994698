"""ASGI entry point: uvicorn (``make run``) and gunicorn's uvicorn workers (deploy/).

Only what needs the event loop goes through Django's ASGI handler: the event stream (an async
view) and the raw upload whose body streams to its view. Every other request is a sync view,
and Django's ASGI handler would hop threads twice for each of its sync middlewares (measured
here: /healthz 4.5 ms under the ASGI handler vs 0.6 ms through the WSGI handler in one hop);
those go to Django's WSGI handler, run in a pool of threads by a2wsgi, which streams the
request body to it and closes each response (Django's request_finished, so connections go
back or close).
"""

import os
from typing import Any

from a2wsgi import WSGIMiddleware
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

from api.streamed_body import STREAMED_ROUTES, Receive, Scope, Send, StreamedUploads, route_of
from config.heap import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Connections are closed at the end of each request (or go back to the pool, FERRY_DB_POOL):
# a request's thread may not be the next one's.
os.environ.setdefault("CONN_MAX_AGE", "0")

# Paths of Ferry's async views (tests/e2e/test_asgi_dispatch.py checks the URLconf's).
ASYNC_PATHS = frozenset({"/api/events/"})
# Threads per process for the sync views (a slow download holds one while it streams).
WSGI_THREADS = int(os.environ.get("FERRY_WSGI_THREADS", "16"))

django_application: Any = get_asgi_application()
if settings.DEBUG:  # as runserver does; in production nginx serves /static/
    django_application = ASGIStaticFilesHandler(django_application)
# The raw upload's body streams to its view (Django would first write all of it to disk).
asgi_application = StreamedUploads(django_application)
django_wsgi: Any = get_wsgi_application()
wsgi_application: Any = WSGIMiddleware(django_wsgi, workers=WSGI_THREADS)


# What the process built at start lives as long as it: no collection walks it again.
freeze_startup_heap()


def needs_event_loop(scope: Scope) -> bool:
    """Whether Django's ASGI handler serves this request (else the WSGI handler does)."""
    if scope["type"] != "http":
        return True
    path = route_of(scope)
    if path in ASYNC_PATHS or (scope["method"], path) in STREAMED_ROUTES:
        return True
    return bool(settings.DEBUG and path.startswith(settings.STATIC_URL or "/static/"))


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if needs_event_loop(scope):
        await asgi_application(scope, receive, send)
    else:
        await wsgi_application(scope, receive, send)
