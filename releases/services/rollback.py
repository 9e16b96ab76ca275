"""Rollback: one action that is itself a release, deployed at once, with its audit trail."""

from __future__ import annotations

from django.db import transaction

from institutions.models import Environment
from releases.apply import production_notes
from releases.diff import diff_snapshots, summarize
from releases.models import Release
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    production_of,
    roles_of,
)
from releases.services.create import next_number
from releases.services.deploy import lock_production, release_deploy
from releases.snapshot import capture, snapshot_hash

ROLLBACK_ROLES = frozenset({"admin", "it"})


class RollbackConflict(ReleaseRefused):
    """Production no longer runs the release: rolling back would undo the changes since."""

    def __init__(self, message: str, entries: list[dict]):
        super().__init__(message)
        self.entries = entries


def changed_since(current: dict, release: Release) -> list[dict]:
    """How production (`current`, its snapshot) differs from what `release` made it; empty
    when it runs the release. Only the models the release's snapshot holds are compared: a
    model registered since is not the release's business.
    """
    held = {label: current["models"].get(label, {}) for label in release.snapshot.get("models", {})}
    return diff_snapshots(release.snapshot, {**current, "models": held})


def record_rollback_refusal(
    release: Release, refusal: ReleaseRefused, *, what: str, actor=None
) -> None:
    """Keep a refused rollback visible on the release (its conflict, if any, and why)."""
    fields = {"last_error": refusal.message}
    if isinstance(refusal, RollbackConflict):
        fields["conflict"] = refusal.entries
    with transaction.atomic():
        Release._base_manager.filter(pk=release.pk).update(**fields)
        for name, value in fields.items():
            setattr(release, name, value)
        audit_release(release, what=what, actor=actor, reason=refusal.message)


def _refusal_for_changed_production(environment, release, entries) -> ReleaseRefused:
    later = (
        Release._base_manager.filter(
            environment=environment,
            kind=Release.Kind.PROMOTION,
            state=Release.State.DEPLOYED,
            deployed_at__gt=release.deployed_at,
        )
        .order_by("-deployed_at")
        .first()
    )
    if later is not None:
        return ReleaseRefused(
            f"Release #{later.number} was deployed after release #{release.number}: "
            "roll that one back first."
        )
    return RollbackConflict(
        f"Rollback of release #{release.number} stopped: production changed after it was "
        f"deployed ({summarize(entries)}), and rolling back would silently undo that. "
        "Production is unchanged; make a release from staging instead.",
        entries,
    )


def release_rollback(*, environment: Environment, release: Release, actor, reason: str) -> Release:
    """Return production to what it ran before `release`; `actor` None is the watch itself.

    Only while production still runs exactly the release: a later release, a kill switch
    or an emergency change since would be undone without anyone seeing it, so the
    rollback stops and the release shows the conflict. Production's row is locked from the
    check to the write, so a deploy at the same moment is either seen or waits.
    """
    check_release_environment(environment, release)
    reason = reason.strip()
    if actor is not None and not roles_of(actor, environment.institution) & ROLLBACK_ROLES:
        raise ReleaseRefused("Rolling back needs the IT or admin role.")
    if not reason:
        raise ReleaseRefused("Say why you roll back: a reason is required.")
    _check_rollbackable(release)
    production = production_of(environment)
    refusal = None
    with transaction.atomic():
        # Locks in the order a deploy takes them: the release, production, then staging
        # (for the next number; a deploy's audit entries need staging's row after production).
        locked = Release._base_manager.select_for_update().get(pk=release.pk)
        _check_rollbackable(locked)  # rolled back by someone else a moment ago
        lock_production(production)
        number = next_number(environment)
        current = capture(production)
        entries = changed_since(current, locked)
        if entries:
            refusal = _refusal_for_changed_production(environment, locked, entries)
        else:
            rollback = _roll_back(environment, production, locked, current, number, actor, reason)
    if refusal is not None:
        if isinstance(refusal, RollbackConflict):
            record_rollback_refusal(release, refusal, what="rollback stopped", actor=actor)
        raise refusal
    release.refresh_from_db()
    rollback.refresh_from_db()
    return rollback


def _check_rollbackable(release: Release) -> None:
    if release.kind == Release.Kind.ROLLBACK:
        # Undoing a rollback would bring back a configuration just taken out of production
        # (perhaps by a failed watch) with no sign-off and no watch.
        raise ReleaseRefused(
            f"Release #{release.number} is itself a rollback and cannot be rolled back: to "
            "bring that configuration back, make a new release from staging, with its "
            "sign-offs and watch."
        )
    if release.state != Release.State.DEPLOYED or release.previous_snapshot is None:
        raise ReleaseRefused(
            f"Release #{release.number} is {release.get_state_display().lower()}: "
            "only a deployed release can be rolled back."
        )


def _roll_back(environment, production, release, current, number, actor, reason) -> Release:
    """Make and deploy the rollback release; the caller's transaction holds the locks."""
    target = release.previous_snapshot
    rollback = Release._base_manager.create(
        environment=environment,
        number=number,
        kind=Release.Kind.ROLLBACK,
        title=f"Rollback of release #{release.number}",
        notes=reason,
        author=actor,
        required_roles=[],
        snapshot=target,
        snapshot_hash=snapshot_hash(target),
        base_snapshot=current,
        base_hash=snapshot_hash(current),
        diff=production_notes(environment=production, entries=diff_snapshots(current, target)),
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
    release.conflict, release.last_error = [], ""
    if release.watch_state in (Release.Watch.WATCHING, Release.Watch.NEEDS_DECISION):
        # Nothing is left to watch: production no longer runs the release.
        release.watch_state = Release.Watch.ENDED
    release.save(update_fields=["state", "state_reason", "conflict", "last_error", "watch_state"])
    audit_release(release, what="rolled back", actor=actor, reason=reason)
    return rollback
