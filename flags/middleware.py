"""Request metrics for every tenant request, and the flags of a request (impressions)."""

from __future__ import annotations

import time

from flags import evaluation, request_metrics
from institutions.tenancy import environment_scope


def _cohort(request) -> str:
    from homes.middleware import MEMBER_SESSION_KEY

    session = getattr(request, "session", None)
    if session is None or not session.get(MEMBER_SESSION_KEY):
        return "anonymous"
    # This middleware sits outside the scope middleware: look the member up in scope.
    with environment_scope(request.environment):
        member = getattr(request, "member", None)
        if not member:
            return "anonymous"
        return "test" if member.is_test else "member"


class RequestMetricsMiddleware:
    """Counts responses per environment, minute and cohort (5xx, latency histogram)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        environment = getattr(request, "environment", None)
        if environment is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            request_metrics.record(
                environment.pk, _cohort(request), response.status_code, elapsed_ms
            )
        return response


class FlagsMiddleware:
    """Records the request's new flag impressions once, after the response is built."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_chimney_flags", None) is not None:
            evaluation.impressions_flush(request)
        return response
