"""Tests for cello_twisted/testing/: the in-memory test client."""
