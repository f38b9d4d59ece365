"""Tests for cello_twisted/routing/: registration, path patterns, constraints, method dispatch."""
