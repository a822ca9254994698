"""Settings modules: ``local`` (embedded default), ``production``, ``test``."""
