"""Executors run operations (local Docker, miniwdl, Cromwell) behind one interface (coming next)."""
