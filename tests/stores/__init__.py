"""Tests for cello_twisted/stores/: memory stores, and Redis stores against a real redis-server."""
