"""Tests for cello_twisted/sse/: Server-Sent Events values and streaming (SPEC §2.18)."""
