"""Tests for cello_twisted/static/: static file mounts and file responses."""
