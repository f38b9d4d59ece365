"""Security tests: JWT, guards, sessions, CSRF, security headers, short-secret policy."""
