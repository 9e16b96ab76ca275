"""Factories of the institutions' API rows (registered for the generic tenancy tests)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from institutions.models import ApiKey, ApiScope, IdempotencyRecord
from institutions.services.api_keys import api_key_create
from institutions.tenancy import environment_scope
from tests.factories import tenant_factory

ALL_SCOPES = list(ApiScope.values)


@tenant_factory(ApiKey)
def api_key_factory(environment, **kwargs) -> ApiKey:
    return api_key_with_secret(environment, **kwargs)[0]


def api_key_with_secret(environment, *, scopes=None, name="core banking", **kwargs):
    """A key of the environment and the full key to send."""
    with environment_scope(environment):
        return api_key_create(
            environment=environment, name=name, scopes=scopes or ALL_SCOPES, **kwargs
        )


@tenant_factory(IdempotencyRecord)
def idempotency_record_factory(environment, **kwargs) -> IdempotencyRecord:
    key = kwargs.pop("api_key", None) or api_key_factory(environment=environment)
    now = timezone.now()
    with environment_scope(environment):
        return IdempotencyRecord.objects.create(
            environment=environment,
            api_key=key,
            key=kwargs.pop("key", f"key-{now.timestamp()}"),
            request_hash="0" * 64,
            method="POST",
            path="/api/v1/members/",
            locked_until=now + timedelta(minutes=5),
            expires_at=now + timedelta(hours=24),
            **kwargs,
        )
