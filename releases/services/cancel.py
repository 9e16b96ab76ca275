"""Calling off a scheduled deploy: back to approved, sign-offs kept, audited."""

from __future__ import annotations

from django.db import transaction

from institutions.models import Environment
from releases.models import Release
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    roles_of,
)
from releases.services.deploy import DEPLOY_ROLES


def release_cancel(*, environment: Environment, release: Release, actor, reason: str) -> Release:
    """Take a scheduled release off the schedule; it stays approved and can be scheduled again.

    The release row is locked, as the deploy locks it: a deploy already under way finishes
    (and the cancel is refused), otherwise the deploy finds the release no longer scheduled.
    """
    check_release_environment(environment, release)
    if not roles_of(actor, environment.institution) & DEPLOY_ROLES:
        # Calling a deploy off is deciding about it: the same roles as scheduling it.
        raise ReleaseRefused("Cancelling a scheduled deploy needs the IT or admin role.")
    reason = reason.strip()
    if not reason:
        raise ReleaseRefused("Say why the deploy is called off: a reason is required.")
    with transaction.atomic():
        locked = Release._base_manager.select_for_update().get(pk=release.pk)
        if locked.state != Release.State.SCHEDULED:
            raise ReleaseRefused(
                f"Release #{locked.number} is {locked.get_state_display().lower()}: "
                "only a scheduled deploy can be cancelled."
            )
        planned = locked.scheduled_for
        locked.state = Release.State.APPROVED
        locked.state_reason = f"Scheduled deploy cancelled: {reason}"
        locked.scheduled_for = None
        locked.scheduled_by = None
        locked.scheduled_at = None
        locked.window_override_reason = ""
        locked.save(
            update_fields=[
                "state",
                "state_reason",
                "scheduled_for",
                "scheduled_by",
                "scheduled_at",
                "window_override_reason",
            ]
        )
        audit_release(
            locked,
            what=f"scheduled deploy for {planned.isoformat()} cancelled",
            actor=actor,
            reason=reason,
        )
    release.refresh_from_db()
    return release
