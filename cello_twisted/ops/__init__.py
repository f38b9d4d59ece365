"""Operational features added by ``app.enable_*`` calls: the API description (OpenAPI,
Swagger UI), typed request bodies, request IDs, health and readiness, Prometheus metrics.

Nothing is imported here: routing imports ``ops._body`` for routes declared with
``body=``/``response=``, and must not pull in the document builder with it; each
``enable_*`` imports its own module when called, so an unused feature costs nothing.
"""
