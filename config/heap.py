"""Python's cycle collector, told that what a process built at start stays.

A list request builds tens of thousands of short-lived objects (rows, dicts, strings): every
700 allocations a young collection runs, and now and then one of the oldest generation, which
walks every object the process holds — Django, DRF, the URLconf, the serializers' fields,
~200,000 objects that live as long as the process. On a 500-row jobs page that was a third of
the request's CPU. :func:`freeze_startup_heap`, run once a process has loaded the application
(each web worker after it imports config.asgi / config.wsgi, each django-q2 worker when it is
spawned), collects what start-up left as garbage and moves the rest to the permanent generation
(``gc.freeze``), which no collection walks again. Objects made later are collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect start-up garbage, then exempt every object alive now from later collections;
    how many objects that froze."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
