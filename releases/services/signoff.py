"""Sign-off: each required role approves or rejects, one person per role, never the author
nor anyone whose change the release carries; an approval counts while its signer holds the
role."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from institutions import promotion
from institutions.models import AuditEntry, Environment
from institutions.selectors import granted_roles
from releases.models import Release, SignOff
from releases.selectors import signoffs_of
from releases.services.common import (
    ROLE_NAMES,
    ReleaseRefused,
    audit_release,
    check_release_environment,
    mail_after_commit,
    role_names,
)
from releases.services.create import ensure_current

_APPROVED_STATES = (Release.State.APPROVED, Release.State.SCHEDULED)


def _approvals(release: Release) -> tuple[dict[str, SignOff], list[SignOff]]:
    """The release's approvals that stand (by role) and those that lapsed.

    An approval stands while its signer holds the role at the institution, read now: a
    four-eyes control is only as good as the people still answerable for the role.
    """
    approvals = [s for s in signoffs_of(release) if s.decision == SignOff.Decision.APPROVE]
    held = granted_roles(release.environment.institution, [s.signer_id for s in approvals])
    standing = {s.role: s for s in approvals if s.role in held.get(s.signer_id, ())}
    lapsed = [s for s in approvals if standing.get(s.role) is not s]
    return standing, lapsed


def missing_roles(release: Release) -> list[str]:
    """The required roles without an approval from someone who holds the role now."""
    standing, _ = _approvals(release)
    return _unapproved(release, standing)


def _unapproved(release: Release, standing: dict[str, SignOff]) -> list[str]:
    return [r for r in release.required_roles if r not in standing]


def _lapsed_text(signoff: SignOff) -> str:
    label = ROLE_NAMES.get(signoff.role, signoff.role)
    return (
        f"the {label} approval by {signoff.signer} no longer counts: "
        f"they no longer hold the {label} role"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def release_signoffs_recheck(release: Release) -> None:
    """Send an approved or scheduled release back to sign-off if an approval lapsed.

    Schedule and deploy go through `ensure_current`, which calls this: the roles are judged
    when the release is acted on, not only when its last approval arrived.
    """
    if release.kind != Release.Kind.PROMOTION or release.state not in _APPROVED_STATES:
        return
    standing, lapsed = _approvals(release)
    missing = _unapproved(release, standing)
    if not missing:
        return
    why = "; ".join(_lapsed_text(s) for s in lapsed if s.role in missing)
    with transaction.atomic():
        locked = Release._base_manager.select_for_update().get(pk=release.pk)
        if locked.state not in _APPROVED_STATES:
            return
        scheduler = locked.scheduled_by
        locked.state = Release.State.PENDING
        locked.scheduled_for = None
        locked.window_override_reason = ""
        locked.state_reason = (
            f"Back to waiting for sign-off from {role_names(missing)}: "
            + _sentence(why or "a required approval is missing")
        )
        locked.save(
            update_fields=["state", "scheduled_for", "window_override_reason", "state_reason"]
        )
        audit_release(locked, what="back to waiting for sign-off", reason=locked.state_reason)
        mail_after_commit(
            f"{locked.environment.institution}: release #{locked.number} needs sign-off again",
            f"{locked.state_reason}\n\nIt will not deploy until {role_names(missing)} "
            "approve it again.\n",
            [scheduler, locked.author],
        )


def _base_entry_id(release: Release) -> int:
    """The audit entry after which staging's changes are the ones this release carries.

    The latest earlier promotion whose snapshot is this release's base was captured while
    staging held exactly the base: every difference the release carries was written to
    staging after it was created. With none (production never held a released staging),
    the whole staging history counts: stricter, never looser.
    """
    source = (
        Release._base_manager.filter(
            environment_id=release.environment_id,
            kind=Release.Kind.PROMOTION,
            snapshot_hash=release.base_hash,
            number__lt=release.number,
        )
        .order_by("-number")
        .first()
    )
    if source is None:
        return 0
    created = (
        AuditEntry.objects.filter(object_type="releases.Release", object_id=str(source.pk))
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    return created or 0


def _changed_by(release: Release, actor) -> list[str]:
    """The promotable configuration `actor` changed in staging that this release carries.

    Read from staging's audit trail (every configuration write is audited with its actor):
    the rows of registered models written since staging held the release's base. A change
    made and undone in that time counts too; that errs on the side of a second pair of eyes.
    """
    models = {p.label: p.model for p in promotion.registered()}
    labels = (
        AuditEntry.objects.filter(
            environment_id=release.environment_id,
            actor_id=actor.pk,
            object_type__in=models,
            id__gt=_base_entry_id(release),
        )
        .order_by()
        .values_list("object_type", flat=True)
        .distinct()
    )
    return sorted(str(models[label]._meta.verbose_name) for label in labels)


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
    institution = environment.institution
    # Sign-offs are the institution's own approvals: a role granted at the institution, not
    # the every-role access a platform superuser has for operating it.
    if actor is None or role not in granted_roles(institution, [actor.pk]).get(actor.pk, ()):
        operator = " (a platform operator signs only with a role granted here)"
        raise ReleaseRefused(
            f"You cannot sign for {label}: you do not hold the {label} role at {institution}"
            + (operator if actor is not None and actor.is_superuser else "")
            + "."
        )
    if decision == SignOff.Decision.APPROVE:
        if release.author_id == actor.pk:
            raise ReleaseRefused("You made this release: someone else must approve it.")
        changed = _changed_by(release, actor)
        if changed:
            raise ReleaseRefused(
                f"You changed {', '.join(changed)} in staging and this release carries "
                f"that change: someone else must approve it for {label}."
            )
    comment = comment.strip()
    if decision == SignOff.Decision.REJECT and not comment:
        raise ReleaseRefused("Say why you reject the release: a comment is required.")
    _, lapsed = _approvals(release)
    lapsed_ids = {s.pk for s in lapsed}
    existing = {s.role: s for s in signoffs_of(release)}
    if role in existing and existing[role].pk not in lapsed_ids:
        raise ReleaseRefused(f"{label} has already signed (by {existing[role].signer}).")
    mine = [s for s in existing.values() if s.signer_id == actor.pk and s.pk not in lapsed_ids]
    if mine:
        raise ReleaseRefused(
            f"You already signed as {ROLE_NAMES.get(mine[0].role, mine[0].role)}: "
            "one person signs for one role only."
        )
    # A lapsed approval in this role, or the signer's own in another, makes way for this one.
    replaced = [s for s in lapsed if s.role == role or s.signer_id == actor.pk]
    try:
        with transaction.atomic():
            locked = Release._base_manager.select_for_update().get(pk=release.pk)
            if locked.state != Release.State.PENDING:
                raise ReleaseRefused(
                    f"Release #{release.number} is no longer waiting for sign-off."
                )
            for old in replaced:
                SignOff._base_manager.filter(pk=old.pk).delete()
                audit_release(
                    locked,
                    what=f"approval for {ROLE_NAMES.get(old.role, old.role)} withdrawn",
                    actor=actor,
                    reason=_sentence(_lapsed_text(old)),
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
