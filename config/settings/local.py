"""The embedded default used by ``make run``: SQLite, ORM broker, local storage in ``var/``."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
