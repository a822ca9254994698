"""glibc's malloc arenas, limited in every Ferry process.

glibc gives each thread that allocates while another holds the main heap's lock an arena of its
own (up to 8 per core) and rarely returns an arena's freed memory to the system. Threaded
servers (gunicorn's gthread, runserver), boto3's transfer threads and django-q's workers make
many such threads, and each one's buffers of several MiB stay in the process's RSS afterwards.
``MALLOC_ARENA_MAX=2`` bounds that; glibc reads it from the environment only at start, so the
deploy units set it there, and :func:`limit_malloc_arenas` (run when the ``config`` package is
imported: every web server, worker and manage.py command) sets the same limit in processes
started without it. An explicit ``MALLOC_ARENA_MAX`` in the environment wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ARENA_MAX = 2
M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def limit_malloc_arenas(limit: int = ARENA_MAX) -> bool:
    """Limit glibc's arenas to ``limit`` unless MALLOC_ARENA_MAX is set; True if it was set
    here. Elsewhere than glibc (musl, macOS) nothing happens."""
    if os.environ.get("MALLOC_ARENA_MAX", "").strip():
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, limit))
