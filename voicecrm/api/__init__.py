"""The REST API (docs/api.md): one router for every app, under /api/v1/ (urls.py).

Modules: urls (the router), one module of views per resource group (customers, calls,
tickets…), auth (signing in: tokens and JWTs), authentication (reading them on each request),
filters (query parameters, search, ordering), pagination, permissions (roles), errors (one
error format), parsers, schema (OpenAPI hooks). Nothing is imported here: DRF resolves the
classes named in settings while rest_framework.views is still being imported, so importing
views from this package's __init__ would be circular.
"""
