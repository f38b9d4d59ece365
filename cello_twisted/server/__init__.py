"""Serving a Cello app: run(), cluster workers, TLS, reload, embedding and the twistd plugin."""
