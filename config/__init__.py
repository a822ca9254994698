"""Ferry's Django project: settings, URLs, WSGI/ASGI entry points."""

from .malloc import limit_malloc_arenas

limit_malloc_arenas()
