"""Operational features added by ``app.enable_*`` calls: the API description (OpenAPI,
Swagger UI) and typed request bodies.

Nothing is imported here: routing imports ``ops._body`` for routes declared with
``body=``/``response=``, and must not pull in the document builder with it.
"""
