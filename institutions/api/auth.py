"""API key authentication, scope permissions and a per-key throttle."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions, permissions, throttling

from institutions.models import ApiKey, Environment
from institutions.services.api_keys import ApiKeyError, api_key_authenticate


@dataclass(frozen=True)
class ApiClient:
    """request.user for an API request: the key's system, not a person."""

    key: ApiKey

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True
    is_anonymous = False
    pk = None

    def __str__(self) -> str:
        return f"API key {self.key.display_prefix}"

    @property
    def label(self) -> str:
        """Who acted, for the audit trail."""
        return f"API key {self.key.display_prefix} ({self.key.name})"[:150]


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer chk_<test|live>_…`, valid only on its own environment's host.

    The environment comes from the host (TenantHostMiddleware); a key of any other
    environment or institution is refused with 401, like a wrong one.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode("latin-1").lower() != self.keyword.lower() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as `Authorization: Bearer <key>`.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("The API key is malformed.") from error
        environment = getattr(request._request, "environment", None)
        if not isinstance(environment, Environment):
            raise exceptions.AuthenticationFailed("The API answers on an environment's host only.")
        try:
            key = api_key_authenticate(environment=environment, raw_key=raw)
        except ApiKeyError as error:
            raise exceptions.AuthenticationFailed(str(error)) from error
        return ApiClient(key), key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


#: The scope of an operation any valid key of the environment may call.
ANY_KEY = "any-key"


class HasScope(permissions.BasePermission):
    """The view's `scope_for(method)` must be granted to the key. A method the view handles
    without naming its scope is refused (a forgotten declaration must not open it); one it
    does not handle is let through to its 405."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        needed = view.scope_for(request.method)
        if needed == ANY_KEY:
            return True
        if needed is None:
            if hasattr(view, request.method.lower()):
                self.message = "No scope is declared for this operation; it is refused."
                return False
            return True  # not an operation of this path: the view answers 405
        if needed not in key.granted_scopes():
            self.message = f"This API key lacks the {needed} scope."
            return False
        return True


class ApiKeyThrottle(throttling.SimpleRateThrottle):
    """At most API_THROTTLE_RATE requests per key (e.g. "1200/min"), on the shared cache."""

    scope = "api_key"

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return None
        return f"throttle:api:{key.environment_id}:{key.pk}"
