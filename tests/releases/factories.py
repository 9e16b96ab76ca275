"""Factories for the releases models (the generic tenancy and isolation tests use them)."""

from __future__ import annotations

import itertools

from releases.models import Release, RetiredRow, SignOff, StagingDataJob, StagingDataKey
from releases.snapshot import capture, snapshot_hash
from tests.factories import staff_user, tenant_factory

_numbers = itertools.count(1000)


@tenant_factory(Release)
def release_factory(environment, **kwargs) -> Release:
    snapshot = capture(environment)
    fields = {
        "number": next(_numbers),
        "title": "A release",
        "snapshot": snapshot,
        "snapshot_hash": snapshot_hash(snapshot),
        "base_snapshot": snapshot,
        "base_hash": snapshot_hash(snapshot),
        "required_roles": ["it", "marketing", "lending"],
    }
    fields.update(kwargs)
    return Release._base_manager.create(environment=environment, **fields)


@tenant_factory(SignOff)
def signoff_factory(environment, **kwargs) -> SignOff:
    release = kwargs.pop("release", None) or release_factory(environment=environment)
    signer = kwargs.pop("signer", None) or staff_user(environment.institution, "it")
    return SignOff._base_manager.create(
        environment=environment,
        release=release,
        role=kwargs.pop("role", "it"),
        signer=signer,
        decision=kwargs.pop("decision", SignOff.Decision.APPROVE),
        comment=kwargs.pop("comment", "Looks right."),
    )


@tenant_factory(StagingDataKey)
def staging_data_key_factory(environment, **kwargs) -> StagingDataKey:
    """One per environment: return the existing key, or make it."""
    key, _ = StagingDataKey._base_manager.get_or_create(environment=environment, defaults=kwargs)
    return key


@tenant_factory(StagingDataJob)
def staging_data_job_factory(environment, **kwargs) -> StagingDataJob:
    fields = {"kind": StagingDataJob.Kind.MOCK, "parameters": {"count": 10, "seed": 1}}
    fields.update(kwargs)
    return StagingDataJob._base_manager.create(environment=environment, **fields)


@tenant_factory(RetiredRow)
def retired_row_factory(environment, **kwargs) -> RetiredRow:
    fields = {"label": "homes.OfferProduct", "object_id": str(next(_numbers))}
    fields.update(kwargs)
    return RetiredRow._base_manager.create(environment=environment, **fields)
