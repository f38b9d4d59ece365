"""The only code that writes to Twisted's response side: status, headers, body, finish."""
