"""Writes about flags: staging edits, the production kill switch, and rollout steps."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from flags.evaluation import snapshot_invalidate
from flags.models import Flag, Rollout
from institutions.models import AuditEntry
from institutions.selectors import staff_roles
from institutions.services import audit_record, model_snapshot

TARGETING_FIELDS = ("everyone", "percent", "test_cohort", "staff", "note")


def _require_admin(environment, actor) -> None:
    if getattr(actor, "is_superuser", False):
        return
    if actor is None or "admin" not in staff_roles(actor, environment.institution):
        raise PermissionDenied("Only an institution admin can use the kill switch.")


def _save(environment, flag: Flag, *, actor=None, actor_label="", reason="", before=None):
    flag.environment = environment
    flag.full_clean(exclude=["environment", "members"])
    with transaction.atomic():
        flag.save()
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


def flag_save(*, environment, flag: Flag, actor, members=None, reason: str = "") -> Flag:
    """Create or change a flag's targeting in staging (production changes come by release)."""
    if environment.is_production:
        raise ValidationError(
            "Production flags change by release; use the kill switch to turn one off now."
        )
    before = None
    if flag.pk:
        previous = Flag._base_manager.filter(pk=flag.pk, environment=environment).first()
        before = model_snapshot(previous) if previous else None
    _save(environment, flag, actor=actor, reason=reason, before=before)
    if members is not None:
        members = list(members)
        if any(m.environment_id != environment.pk for m in members):
            raise ValidationError({"members": "Members must belong to this environment."})
        flag.members.set(members)
    return flag


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


def flag_apply_step(*, environment, flag: Flag, step, actor_label: str, reason: str) -> Flag:
    """Set a flag to one rollout step: "test" (test cohort), a percentage, or "everyone"."""
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(pk=flag.pk, environment=environment)
        before = model_snapshot(flag)
        if step == "test":
            flag.test_cohort, flag.everyone, flag.percent = True, None, None
        elif step == "everyone":
            flag.everyone, flag.percent = True, None
        else:
            flag.test_cohort, flag.everyone, flag.percent = True, None, step
        _save(environment, flag, actor_label=actor_label, reason=reason, before=before)
    return flag
