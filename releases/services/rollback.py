"""Rollback: one action that is itself a release, deployed at once, with its audit trail."""

from __future__ import annotations

from django.db import transaction

from institutions.models import Environment
from releases.diff import diff_snapshots
from releases.models import Release
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    production_of,
    roles_of,
)
from releases.services.create import _next_number
from releases.services.deploy import release_deploy
from releases.snapshot import capture, snapshot_hash

ROLLBACK_ROLES = frozenset({"admin", "it"})


def release_rollback(*, environment: Environment, release: Release, actor, reason: str) -> Release:
    """Return production to what it ran before `release`; `actor` None is the watch itself."""
    check_release_environment(environment, release)
    reason = reason.strip()
    if actor is not None and not roles_of(actor, environment.institution) & ROLLBACK_ROLES:
        raise ReleaseRefused("Rolling back needs the IT or admin role.")
    if not reason:
        raise ReleaseRefused("Say why you roll back: a reason is required.")
    if release.state != Release.State.DEPLOYED or release.previous_snapshot is None:
        raise ReleaseRefused(
            f"Release #{release.number} is {release.get_state_display().lower()}: "
            "only a deployed release can be rolled back."
        )
    later = (
        Release._base_manager.filter(
            environment=environment,
            state=Release.State.DEPLOYED,
            deployed_at__gt=release.deployed_at,
        )
        .order_by("-deployed_at")
        .first()
    )
    if later is not None:
        raise ReleaseRefused(
            f"Release #{later.number} was deployed after release #{release.number}: "
            "roll that one back first."
        )
    production = production_of(environment)
    with transaction.atomic():
        current = capture(production)
        target = release.previous_snapshot
        rollback = Release._base_manager.create(
            environment=environment,
            number=_next_number(environment),
            kind=Release.Kind.ROLLBACK,
            title=f"Rollback of release #{release.number}",
            notes=reason,
            author=actor,
            required_roles=[],
            snapshot=target,
            snapshot_hash=snapshot_hash(target),
            base_snapshot=current,
            base_hash=snapshot_hash(current),
            diff=diff_snapshots(current, target),
            rolls_back=release,
            state=Release.State.APPROVED,
            state_reason=reason,
        )
        audit_release(
            rollback, what=f"rollback of release #{release.number}", actor=actor, reason=reason
        )
        release_deploy(environment=environment, release=rollback, actor=actor, reason=reason)
        release.state = Release.State.ROLLED_BACK
        release.state_reason = f"Rolled back by release #{rollback.number}: {reason}"
        release.save(update_fields=["state", "state_reason"])
        audit_release(release, what="rolled back", actor=actor, reason=reason)
    rollback.refresh_from_db()
    return rollback
