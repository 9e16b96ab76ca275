"""Guarded rollouts: each step only after the oracle passes; a fail kills the flag."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from flags.models import Flag, Rollout
from flags.oracle import DEFAULT_5XX_RULE, FAIL, PASS, Verdict, oracle_judge, rules_for
from flags.services.flags import flag_apply_step
from institutions.models import AuditEntry, StaffRole
from institutions.services import audit_record, model_snapshot
from institutions.tenancy import environment_scope

logger = logging.getLogger(__name__)

DEFAULT_STEPS = ["test", 5, 25, "everyone"]
ALERT_OWED = ("pending", "failed")  # the kill alert's states until it has gone out


def _clean_steps(steps) -> list:
    """The steps, checked: each can be applied to the flag, and each widens exposure."""
    if not isinstance(steps, list) or not steps:
        raise ValidationError({"steps": 'Give steps like ["test", 5, 25, "everyone"].'})
    out, last = [], -1.0
    for number, step in enumerate(steps, start=1):
        where = f"Step {number}: {step!r}"
        if step == "test":
            # The test cohort is the narrowest exposure: after members have it, going back
            # to test members only would take the feature away from them.
            if number != 1:
                raise ValidationError(
                    {"steps": f'Step {number}: "test" can only be the first step.'}
                )
            out.append(step)
            continue
        if step == "everyone":
            if number != len(steps):
                raise ValidationError(
                    {"steps": f'Step {number}: "everyone" can only be the last step.'}
                )
            out.append(step)
            continue
        try:
            # A boolean is an int to Python (True == 1), and JSON's NaN and Infinity are
            # Decimals that cannot be compared: neither is a percentage.
            if isinstance(step, bool) or not isinstance(step, int | float | str | Decimal):
                raise InvalidOperation
            value = Decimal(str(step))
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation as exc:
            raise ValidationError(
                {"steps": f"{where} is not test, a percentage or everyone."}
            ) from exc
        if not (Decimal("0") < value <= Decimal("99.9")):
            raise ValidationError({"steps": f"{where} is not between 0.1 and 99.9."})
        # The flag holds its percentage to one decimal: a finer step could never be applied.
        if value != value.quantize(Decimal("0.1")):
            raise ValidationError(
                {"steps": f"{where} has more than one decimal place (a flag holds e.g. 2.5)."}
            )
        if float(value) <= last:
            raise ValidationError(
                {"steps": f"{where} does not rise above the step before: percentages must rise."}
            )
        last = float(value)
        out.append(float(value))
    if out[-1] != "everyone":
        raise ValidationError({"steps": 'The last step is "everyone".'})
    return out


def rollout_start(
    *, environment, flag: Flag, actor, steps=None, step_minutes: int = 60, rule_group="rollout"
) -> Rollout:
    """Start at the first step now; the beat task judges and advances it."""
    steps = _clean_steps(steps if steps is not None else DEFAULT_STEPS)
    if flag.killed:
        raise ValidationError("The flag is killed: revive it before rolling it out.")
    if Rollout.objects.filter(flag=flag, status=Rollout.Status.RUNNING).exists():
        raise ValidationError("This flag already has a running rollout.")
    if environment.is_production:
        staging = environment.institution.environments.get(kind="staging")
        with environment_scope(staging):
            if not Flag.objects.filter(environment=staging, name=flag.name).exists():
                raise ValidationError(
                    f"Staging has no flag named {flag.name}, so the next release would remove "
                    "it from production: add it in staging first."
                )
    with transaction.atomic():
        rollout = Rollout.objects.create(
            environment=environment,
            flag=flag,
            steps=steps,
            step_minutes=step_minutes,
            rule_group=rule_group,
            step_started_at=timezone.now(),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=actor,
            environment=environment,
            obj=rollout,
            after=model_snapshot(rollout),
        )
        flag_apply_step(
            environment=environment,
            flag=flag,
            step=steps[0],
            actor_label=f"rollout {rollout.pk}",
            reason=f"rollout step 1 of {len(steps)}: {steps[0]}",
        )
    return rollout


def _alert(rollout: Rollout) -> dict | None:
    """The kill alert's entry, always last in a failed rollout's history: its state
    ("pending", "failed" with the latest error, "sent" or "no recipients") and its tries."""
    last = rollout.history[-1] if rollout.history else None
    return last if last and "alert" in last else None


def _alert_record(rollout: Rollout, state: str, **details) -> None:
    previous = _alert(rollout)
    history = rollout.history[:-1] if previous else rollout.history
    entry = {"at": timezone.now().isoformat(), "alert": state, **details}
    rollout.history = [*history, entry]
    rollout.save(update_fields=["history"])


def _failed_verdict(rollout: Rollout) -> tuple[object, Verdict]:
    """The step the rollout failed at and the oracle's verdict on it, from its history."""
    entry = next(e for e in reversed(rollout.history) if e.get("verdict") == FAIL)
    return entry["step"], Verdict.from_dict(entry)


def rollout_alert_send(*, environment, rollout: Rollout) -> str:
    """Tell the institution's admins and IT (and who started it) that a rollout failed the
    oracle and its flag was killed, once; a mail error propagates (the task retries)."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        alert = _alert(rollout)
        if alert is None or alert["alert"] not in ALERT_OWED:
            return "nothing to send"
        recipients = {
            role.user.email
            for role in StaffRole.objects.filter(
                institution=environment.institution, role__in=["admin", "it"]
            ).select_related("user")
            if role.user.email
        }
        if rollout.created_by and rollout.created_by.email:
            recipients.add(rollout.created_by.email)
        recipients = sorted(recipients)
        step, verdict = _failed_verdict(rollout)
        if recipients:
            send_mail(
                f"[{environment}] Flag {rollout.flag.name} killed: its rollout failed the oracle",
                f"The guarded rollout of {rollout.flag.name} failed at step {step!r} and the "
                f"flag was turned off.\n\n{verdict.summary()}\n",
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
        state = "sent" if recipients else "no recipients"
        _alert_record(rollout, state, tries=alert.get("tries", 0) + 1, to=recipients)
    return state


def rollout_alert_failed(*, environment, rollout: Rollout, error: Exception, final: bool) -> None:
    """A try of the kill alert failed: the rollout's history says so, with the error and
    the tries (the admin shows it); logged as an error once the task's retries ran out."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        alert = _alert(rollout)
        if alert is None or alert["alert"] not in ALERT_OWED:
            return
        tries = alert.get("tries", 0) + 1
        error_text = f"{type(error).__name__}: {error}"[:500]
        _alert_record(rollout, "failed", tries=tries, error=error_text)
    (logger.error if final else logger.warning)(
        "Kill alert for rollout %s of %s in %s not sent (try %s): %s",
        rollout.pk,
        rollout.flag.name,
        environment,
        tries,
        error_text,
    )


def rollout_advance(*, environment, rollout: Rollout, now=None) -> str:
    """Judge the current step once it has lasted step_minutes: pass steps, fail kills."""
    now = now or timezone.now()
    if rollout.status != Rollout.Status.RUNNING:
        return rollout.status
    if (now - rollout.step_started_at).total_seconds() < rollout.step_minutes * 60:
        return "waiting"
    rules = rules_for(environment, rollout.rule_group) or [DEFAULT_5XX_RULE]
    verdict = oracle_judge(
        environment=environment, rules=rules, start=rollout.step_started_at, end=now
    )
    entry = {"at": now.isoformat(), "step": rollout.current_step, **verdict.as_dict()}
    judged = (rollout.step_index, rollout.step_started_at)
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        # The verdict is about the step this copy was at. Another advance may have moved
        # the rollout on, or staff cancelled it (a kill does), while the oracle judged:
        # then the verdict is stale and changes nothing.
        if rollout.status != Rollout.Status.RUNNING:
            return rollout.status
        if (rollout.step_index, rollout.step_started_at) != judged:
            return "stale"
        if Flag.objects.filter(pk=rollout.flag_id, killed=True).exists():
            return "stale"
        rollout.history = [*rollout.history, entry]
        if verdict.verdict == FAIL:
            flag = Flag.objects.select_for_update().get(pk=rollout.flag_id)
            before = model_snapshot(flag)
            flag.killed, flag.killed_at = True, now
            flag.killed_reason = f"Rollout {rollout.pk} failed the oracle at {rollout.current_step}"
            flag.save()
            audit_record(
                action=AuditEntry.Action.UPDATE,
                actor_label=f"rollout {rollout.pk}",
                environment=environment,
                obj=flag,
                before=before,
                after=model_snapshot(flag),
                reason=verdict.summary(),
            )
            rollout.status, rollout.finished_at = Rollout.Status.FAILED, now
            # Staff are owed an alert, recorded with the kill and sent by a task that waits
            # out a mail server outage; the entry says how it went.
            rollout.history = [*rollout.history, {"at": now.isoformat(), "alert": "pending"}]
            rollout.save()
            from flags.tasks import rollout_alert_task

            rollout_alert_task.delay_on_commit(environment.pk, rollout.pk)
            return "failed"
        if verdict.verdict != PASS:
            rollout.save(update_fields=["history"])
            return "inconclusive"
        rollout.step_index += 1
        if rollout.step_index >= len(rollout.steps):
            rollout.status, rollout.finished_at = Rollout.Status.COMPLETED, now
            rollout.save()
            return "completed"
        rollout.step_started_at = now
        rollout.save()
        flag_apply_step(
            environment=environment,
            flag=rollout.flag,
            step=rollout.current_step,
            actor_label=f"rollout {rollout.pk}",
            reason=f"oracle passed; step {rollout.step_index + 1}: {rollout.current_step}",
        )
    return "advanced"
