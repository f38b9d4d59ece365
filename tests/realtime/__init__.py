"""Realtime tests: Server-Sent Events and WebSocket (SPEC §2.18, §2.19, §2.23 r6-7)."""
