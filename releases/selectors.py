"""Reads about releases, always for one environment (releases live in staging)."""

from __future__ import annotations

from django.db.models import QuerySet

from institutions.models import AuditEntry, Environment
from releases.models import Release, SignOff


def signoffs_of(release: Release) -> QuerySet[SignOff]:
    return SignOff._base_manager.filter(
        environment_id=release.environment_id, release=release
    ).select_related("signer")


def releases_of(environment: Environment) -> QuerySet[Release]:
    return Release._base_manager.filter(environment=environment)


def release_audit(release: Release) -> QuerySet[AuditEntry]:
    """The release's own trail plus the production rows its deploy wrote."""
    from django.db.models import Q

    return (
        AuditEntry.objects.filter(institution_id=release.environment.institution_id)
        .filter(
            Q(object_type="releases.Release", object_id=str(release.pk))
            | Q(reason=f"Release #{release.number}", environment__kind="production")
        )
        .select_related("actor", "environment")
        .order_by("at", "id")
    )


def releases_for(environment: Environment) -> QuerySet[Release]:
    """What an environment's API shows: on staging every release made there; on production
    those deployed to it (promotions and rollbacks; they live in staging)."""
    if environment.is_staging:
        return releases_of(environment)
    staging = Environment.objects.get(
        institution_id=environment.institution_id, kind=Environment.Kind.STAGING
    )
    return releases_of(staging).filter(deployed_at__isnull=False)
