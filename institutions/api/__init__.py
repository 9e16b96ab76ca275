"""The integration API's infrastructure: keys, scopes, throttling, idempotency, errors.

Each app keeps its own operations in its `api/` package; chimney/urls_api.py composes them
under /api/v1/ on every environment's host.
"""
