"""Writes about flags: staging edits, the production kill switch, and rollout steps.

Production flags change by release (a snapshot of staging), with two exceptions that
take effect at once: the kill switch, which releases never carry (see flags.apps), and
guarded rollouts. So that a later release does not undo a rollout, each rollout step in
production is written to staging's flag of the same name too (audited there), and while a
rollout runs, staging cannot change that flag's targeting, rename or delete it: the next
snapshot then agrees with production on it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from flags.evaluation import snapshot_invalidate
from flags.models import Flag, Rollout
from institutions.models import AuditEntry, Environment
from institutions.selectors import staff_roles
from institutions.services import (
    audit_record,
    model_snapshot,
    tenant_full_clean,
    tenant_object_delete,
)
from institutions.tenancy import environment_scope

TARGETING_FIELDS = ("everyone", "percent", "test_cohort", "staff", "note")
ROLLOUT_FIELDS = ("everyone", "percent", "test_cohort")  # what a rollout step sets


def _other(environment, kind: str) -> Environment:
    if environment.kind == kind:
        return environment
    return Environment.objects.select_related("institution").get(
        institution_id=environment.institution_id, kind=kind
    )


def production_rollout_of(environment, name: str) -> Rollout | None:
    """The running rollout in production of the flag called `name`, if any."""
    production = _other(environment, Environment.Kind.PRODUCTION)
    with environment_scope(production):
        return (
            Rollout.objects.filter(status=Rollout.Status.RUNNING, flag__name=name)
            .select_related("flag")
            .first()
        )


def _refuse_during_rollout(environment, name: str, what: str) -> None:
    rollout = production_rollout_of(environment, name)
    if rollout is not None:
        raise ValidationError(
            f"{name} is being rolled out in production (rollout {rollout.pk}, step "
            f"{rollout.current_step!r}); staging follows the rollout, so you cannot {what} "
            "until it completes, fails or is killed."
        )


def _require_admin(environment, actor) -> None:
    if getattr(actor, "is_superuser", False):
        return
    if actor is None or "admin" not in staff_roles(actor, environment.institution):
        raise PermissionDenied("Only an institution admin can use the kill switch.")


def _save(
    environment, flag: Flag, *, actor=None, actor_label="", reason="", before=None, members=None
):
    flag.environment = environment
    tenant_full_clean(flag, exclude=("members",))
    with transaction.atomic():
        flag.save()
        if members is not None:  # before the after-snapshot, so the audit entry shows them
            flag.members.set(members)
        audit_record(
            action=AuditEntry.Action.UPDATE if before else AuditEntry.Action.CREATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            obj=flag,
            before=before,
            after=model_snapshot(flag),
            reason=reason,
        )
        snapshot_invalidate(environment.pk)
    return flag


def flag_save_check(*, environment, flag: Flag) -> Flag | None:
    """Refuse (ValidationError) a change flag_save would refuse; returns the stored flag.

    Forms call it to show the reason beside the fields, before anything is saved.
    """
    if environment.is_production:
        raise ValidationError(
            "Production flags change by release; use the kill switch to turn one off now."
        )
    if not flag.pk:
        return None
    previous = Flag._base_manager.filter(pk=flag.pk, environment=environment).first()
    if previous is not None and (
        previous.name != flag.name
        or any(getattr(previous, f) != getattr(flag, f) for f in ROLLOUT_FIELDS)
    ):
        _refuse_during_rollout(environment, previous.name, "change its targeting or name")
    return previous


def flag_delete_check(*, environment, flag: Flag) -> None:
    """Refuse (ValidationError) a deletion flag_delete would refuse."""
    if environment.is_production:
        raise ValidationError("Production flags change by release.")
    _refuse_during_rollout(environment, flag.name, "delete it")


def flag_save(*, environment, flag: Flag, actor, members=None, reason: str = "") -> Flag:
    """Create or change a flag's targeting in staging (production changes come by release).

    `members`, when given, replaces the named members, in the same audited change.
    """
    previous = flag_save_check(environment=environment, flag=flag)
    before = model_snapshot(previous) if previous else None
    if members is not None:
        members = list(members)
        if any(m.environment_id != environment.pk for m in members):
            raise ValidationError({"members": "Members must belong to this environment."})
    _save(environment, flag, actor=actor, reason=reason, before=before, members=members)
    return flag


def flag_delete(*, environment, flag: Flag, actor, reason: str = "") -> None:
    """Delete a staging flag (audited); refused while production rolls it out."""
    flag_delete_check(environment=environment, flag=flag)
    tenant_object_delete(environment=environment, obj=flag, actor=actor, reason=reason)


def flag_kill(*, environment, flag: Flag, actor, reason: str) -> Flag:
    """Turn a flag off for everyone now (any environment), with a reason; audited."""
    _require_admin(environment, actor)
    if not reason.strip():
        raise ValidationError({"reason": "Say why the flag is being killed."})
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk, environment=environment)
        before = model_snapshot(flag)
        flag.killed, flag.killed_at, flag.killed_reason = True, timezone.now(), reason.strip()
        _save(environment, flag, actor=actor, reason=reason, before=before)
        for rollout in Rollout.objects.filter(flag=flag, status=Rollout.Status.RUNNING):
            rollout.status = Rollout.Status.CANCELLED
            rollout.finished_at = timezone.now()
            rollout.history = [
                *rollout.history,
                {"at": timezone.now().isoformat(), "killed": reason},
            ]
            rollout.save(update_fields=["status", "finished_at", "history"])
    return flag


def flag_revive(*, environment, flag: Flag, actor, reason: str) -> Flag:
    """Undo the kill switch (admin, with a reason; audited); targeting is as before."""
    _require_admin(environment, actor)
    if not reason.strip():
        raise ValidationError({"reason": "Say why the flag is being revived."})
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk, environment=environment)
        before = model_snapshot(flag)
        flag.killed, flag.killed_at, flag.killed_reason = False, None, ""
        _save(environment, flag, actor=actor, reason=reason, before=before)
    return flag


def _set_step(flag: Flag, step) -> None:
    if step == "test":
        flag.test_cohort, flag.everyone, flag.percent = True, None, None
    elif step == "everyone":
        flag.everyone, flag.percent = True, None
    else:
        flag.test_cohort, flag.everyone, flag.percent = True, None, step


def _follow_in_staging(production, flag: Flag, *, actor_label: str, reason: str) -> None:
    """Write a production rollout step to staging's flag, so a release keeps it."""
    staging = _other(production, Environment.Kind.STAGING)
    with environment_scope(staging):
        twin = Flag.objects.select_for_update().filter(environment=staging, name=flag.name).first()
        before = model_snapshot(twin) if twin is not None else None
        if twin is None:  # staging lost it meanwhile: a release would remove the flag
            twin = Flag(name=flag.name, note=flag.note, staff=flag.staff)
        for name in ROLLOUT_FIELDS:
            setattr(twin, name, getattr(flag, name))
        _save(
            staging,
            twin,
            actor_label=actor_label,
            reason=f"follows production: {reason}",
            before=before,
        )


def flag_apply_step(*, environment, flag: Flag, step, actor_label: str, reason: str) -> Flag:
    """Set a flag to one rollout step: "test" (test cohort), a percentage, or "everyone".

    In production the step is written to staging's flag too (see the module docstring).
    """
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk, environment=environment)
        before = model_snapshot(flag)
        _set_step(flag, step)
        _save(environment, flag, actor_label=actor_label, reason=reason, before=before)
        if environment.is_production:
            _follow_in_staging(environment, flag, actor_label=actor_label, reason=reason)
    return flag
