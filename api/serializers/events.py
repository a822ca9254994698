"""The event stream's token (the stream itself, ``GET /api/events/``, is not DRF)."""

from __future__ import annotations

from rest_framework import serializers


class EventStreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Pass as ?token= to GET /api/events/.")
    expires_in = serializers.IntegerField(help_text="Seconds the token can open a stream.")
