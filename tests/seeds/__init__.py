"""The user-facing seed documents' examples, run as written."""
