"""Tests for cello_twisted/wire/: writing headers and bodies to Twisted's response side."""
