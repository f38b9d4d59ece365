"""Helpers shared by tests in more than one folder (tokens and clocks, subprocess servers, live sockets)."""
