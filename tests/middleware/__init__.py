"""Tests for cello_twisted/middleware/: the chain and one module per middleware."""
