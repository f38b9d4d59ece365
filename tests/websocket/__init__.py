"""Tests for cello_twisted/websocket/: upgrade, handlers, live sockets (SPEC §2.19)."""
