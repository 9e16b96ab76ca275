"""Sign-off: each required role approves or rejects, one person per role, never the author."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from institutions.models import Environment
from releases.models import Release, SignOff
from releases.selectors import signoffs_of
from releases.services.common import (
    ROLE_NAMES,
    ReleaseRefused,
    audit_release,
    check_release_environment,
    role_names,
    roles_of,
)
from releases.services.create import ensure_current


def missing_roles(release: Release) -> list[str]:
    signed = {s.role for s in signoffs_of(release) if s.decision == SignOff.Decision.APPROVE}
    return [r for r in release.required_roles if r not in signed]


def release_sign(
    *,
    environment: Environment,
    release: Release,
    role: str,
    decision: str,
    comment: str = "",
    actor,
) -> SignOff:
    """Record one signer's approval or rejection for one role."""
    check_release_environment(environment, release)
    ensure_current(environment, release)
    if release.state != Release.State.PENDING:
        raise ReleaseRefused(
            f"Release #{release.number} is {release.get_state_display().lower()}; "
            "only a release waiting for sign-off can be signed."
        )
    if decision not in SignOff.Decision.values:
        raise ReleaseRefused("Choose approve or reject.")
    label = ROLE_NAMES.get(role, role)
    if role not in release.required_roles:
        raise ReleaseRefused(
            f"This release needs sign-off from {role_names(release.required_roles)}; "
            f"{label} is not one of them."
        )
    if actor is None or role not in roles_of(actor, environment.institution):
        raise ReleaseRefused(f"You cannot sign for {label}: you do not hold the {label} role.")
    if decision == SignOff.Decision.APPROVE and release.author_id == actor.pk:
        raise ReleaseRefused("You made this release: someone else must approve it.")
    comment = comment.strip()
    if decision == SignOff.Decision.REJECT and not comment:
        raise ReleaseRefused("Say why you reject the release: a comment is required.")
    existing = {s.role: s for s in signoffs_of(release)}
    if role in existing:
        raise ReleaseRefused(f"{label} has already signed (by {existing[role].signer}).")
    mine = [s for s in existing.values() if s.signer_id == actor.pk]
    if mine:
        raise ReleaseRefused(
            f"You already signed as {ROLE_NAMES.get(mine[0].role, mine[0].role)}: "
            "one person signs for one role only."
        )
    try:
        with transaction.atomic():
            locked = Release._base_manager.select_for_update().get(pk=release.pk)
            if locked.state != Release.State.PENDING:
                raise ReleaseRefused(
                    f"Release #{release.number} is no longer waiting for sign-off."
                )
            signoff = SignOff._base_manager.create(
                environment=environment,
                release=locked,
                role=role,
                signer=actor,
                decision=decision,
                comment=comment,
            )
            if decision == SignOff.Decision.REJECT:
                locked.state = Release.State.REJECTED
                locked.state_reason = f"Rejected for {label} by {actor}: {comment}"
            elif not missing_roles(locked):
                locked.state = Release.State.APPROVED
                locked.state_reason = "Every required role approved."
            locked.save(update_fields=["state", "state_reason"])
            audit_release(
                locked,
                what=f"{signoff.get_decision_display().lower()} for {label}",
                actor=actor,
                reason=comment,
            )
    except IntegrityError as exc:  # a concurrent signature for the same role or person
        raise ReleaseRefused("Someone signed this release at the same moment; reload.") from exc
    release.refresh_from_db()
    return signoff
