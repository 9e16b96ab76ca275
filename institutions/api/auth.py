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


class HasScope(permissions.BasePermission):
    """The view's `required_scopes[method]` (or `required_scope`) must be granted to the key."""

    message = "This API key lacks the scope this operation needs."

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        needed = view.scope_for(request.method)
        if needed is None:
            return True
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
