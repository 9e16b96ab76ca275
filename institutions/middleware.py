"""Tenancy middleware: resolve the host to an environment, then activate its scope."""

from __future__ import annotations

import time

from django.conf import settings
from django.shortcuts import render
from django_scopes import scopes_disabled

from institutions import page_cache
from institutions.selectors import staff_environments
from institutions.tenancy import environment_scope, resolve_host_cached

ADMIN_ENVIRONMENT_SESSION_KEY = "chimney_admin_environment_id"


class TenantHostMiddleware:
    """First middleware: unknown hosts answer 404; tenant hosts get the member urlconf."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # get_host() raises DisallowedHost (answered as 400) for a malformed Host header.
        host = request.get_host()
        with scopes_disabled():
            match = resolve_host_cached(host)
        if match is None:
            return render(request, "institutions/unknown_host.html", {"host": host}, status=404)
        request.environment = match.environment
        request.institution = match.environment.institution if match.environment else None
        if match.kind == "tenant":
            request.urlconf = settings.TENANT_URLCONF
        return self.get_response(request)


def admin_environment(request):
    """The environment a staff member edits in the admin: the one selected, else the first."""
    if not getattr(request.user, "is_authenticated", False) or not request.user.is_staff:
        return None
    environments = list(staff_environments(request.user))
    if not environments:
        return None
    wanted = request.session.get(ADMIN_ENVIRONMENT_SESSION_KEY)
    for env in environments:
        if env.pk == wanted:
            return env
    # Default to staging: staff change staging and promote.
    return next((e for e in environments if e.is_staging), environments[0])


class ScopeMiddleware:
    """Activate the request's environment for every tenant-owned query it makes.

    Tenant hosts use their own environment; on the platform host the admin uses the
    staff member's selected environment. Anything else runs with no scope, so a tenant
    query there raises instead of leaking rows. Scoped requests read the environment's
    cached page values in one round trip (institutions.page_cache).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        environment = getattr(request, "environment", None)
        if environment is None:
            environment = admin_environment(request)
            request.admin_environment = environment
        if environment is None:
            return self.get_response(request)
        # A member page reads its session first: fetch it with the page values.
        session_key = None
        if getattr(request, "environment", None) is not None:
            unread = getattr(getattr(request, "session", None), "unread_cache_key", None)
            session_key = unread() if unread is not None else None
        with (
            environment_scope(environment),
            page_cache.request_values(environment.pk, [session_key] if session_key else ()),
        ):
            return self.get_response(request)


class SessionIdleMiddleware:
    """Extend a non-empty session on activity, saving it at most once a minute.

    The session expires SESSION_COOKIE_AGE after the last save, so sessions end after
    30 idle minutes (give or take SESSION_IDLE_TOUCH_SECONDS) without a write per request.
    """

    KEY = "_chimney_touched"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty():
            now = int(time.time())
            if now - session.get(self.KEY, 0) >= settings.SESSION_IDLE_TOUCH_SECONDS:
                session[self.KEY] = now
        return response
