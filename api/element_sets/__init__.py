"""Observation and feature sets kept per workspace: values (pure checks), selectors (who may
read which), services (create, update, delete, combine)."""
