"""Journeys: members enter on a trigger, beat advances them step by step until they finish
or meet an exit condition. Each member's progress is one stored row."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from homes.models import Member
from institutions.models import Environment
from institutions.tenancy import environment_scope
from notifications.models import Channel, Journey, JourneyProgress, Preference
from notifications.services.outbox import DeliveryPlan, deliveries_enqueue

logger = logging.getLogger(__name__)

CHECKS = ("opened_last", "clicked_last", "has_push", "enrolled")
EXITS = ("unsubscribed", "offer_selected", "opted_out")
EVENT_TRIGGERS = {
    "member_enrolled": Journey.Trigger.ENROLLED,
    "home_value_changed": Journey.Trigger.VALUE_CHANGED,
    "offer_matched": Journey.Trigger.OFFER_MATCHED,
    "offer_saved": Journey.Trigger.OFFER_SAVED,
}


WAIT_UNITS = ("days", "hours")


def _wait_problem(step) -> str:
    """What is wrong with a wait step, or ''."""
    bad = [
        unit
        for unit in WAIT_UNITS
        if unit in step
        and (not isinstance(step[unit], int) or isinstance(step[unit], bool) or step[unit] < 0)
    ]
    if bad:
        given = ", ".join(f"{unit} {step[unit]!r}" for unit in bad)
        return f"{' and '.join(bad)} must be whole numbers of 0 or more (got {given})"
    if not any(step.get(unit, 0) > 0 for unit in WAIT_UNITS):
        return "a wait needs positive whole days or hours"
    return ""


def _exit_problems(exit_conditions) -> list[str]:
    """What is wrong with a journey's exit conditions ([]: nothing)."""
    known = ", ".join(f'"{e}"' for e in EXITS)
    if isinstance(exit_conditions, str):  # not one error per character of it
        example = exit_conditions if exit_conditions in EXITS else EXITS[0]
        return [f'Give a list, e.g. ["{example}"], not the text {exit_conditions!r} ({known}).']
    if not isinstance(exit_conditions, list):
        return [f"Give a list of exit conditions ({known}), not {exit_conditions!r}."]
    bad_exits = [e for e in exit_conditions if e not in EXITS]
    if bad_exits:
        return [f"unknown exit conditions {bad_exits}; known: {list(EXITS)}"]
    return []


def journey_steps_validate(steps, exit_conditions=()) -> None:
    """Raise ValidationError naming each bad step and bad exit condition."""
    errors = []
    if not isinstance(steps, list) or not steps:
        errors, steps = ["Give a list of steps."], []
    for i, step in enumerate(steps, start=1):
        kind = step.get("type") if isinstance(step, dict) else None
        if kind == "wait":
            problem = _wait_problem(step)
            if problem:
                errors.append(f"step {i}: {problem}")
        elif kind == "send":
            if not step.get("template"):
                errors.append(f"step {i}: a send needs a template key")
            if step.get("channel") not in Channel.values:
                errors.append(f"step {i}: channel must be one of {Channel.values}")
        elif kind == "condition":
            if step.get("check") not in CHECKS:
                errors.append(f"step {i}: check must be one of {list(CHECKS)}")
            if step.get("otherwise", "exit") not in ("exit", "skip"):
                errors.append(f"step {i}: otherwise must be exit or skip")
        else:
            errors.append(f"step {i}: type must be wait, send or condition")
    problems = {"steps": errors, "exit_conditions": _exit_problems(exit_conditions)}
    if any(problems.values()):
        raise ValidationError({field: found for field, found in problems.items() if found})


def journeys_enter(*, environment, trigger: str, member_ids: list[int], change_pct=None) -> int:
    """Enter members into every active journey with this trigger (once per journey)."""
    return journeys_enter_many(
        environment=environment, trigger=trigger, entries=[(m, change_pct) for m in member_ids]
    )


def _crosses(journey, change_pct) -> bool:
    try:
        return change_pct is not None and abs(Decimal(str(change_pct))) >= journey.threshold_pct
    except InvalidOperation:
        return False


def journeys_enter_many(*, environment, trigger: str, entries: list[tuple[int, object]]) -> int:
    """Enter many members, each with its own value change (None unless the trigger is a
    value change), into every active journey with this trigger (once per journey)."""
    journeys = Journey.objects.filter(environment=environment, trigger=trigger, active=True)
    entered = 0
    for journey in journeys:
        members = list(
            dict.fromkeys(  # once per member, in order
                member_id
                for member_id, change_pct in entries
                if trigger != Journey.Trigger.VALUE_CHANGED or _crosses(journey, change_pct)
            )
        )
        _progress_create(environment, journey, members)
        entered += len(members)
    return entered


def _progress_create(environment, journey, member_ids: list[int]) -> None:
    """A fresh JourneyProgress per member not in the journey yet."""
    if connection.vendor != "postgresql" or len(member_ids) < 50:
        JourneyProgress.objects.bulk_create(
            [
                JourneyProgress(environment=environment, journey=journey, member_id=member_id)
                for member_id in member_ids
            ],
            ignore_conflicts=True,
        )
        return
    # Thousands at once (a refresh matching offers to every home): one statement, the ids
    # as one array, the other columns as a new JourneyProgress has them.
    fresh = JourneyProgress(environment=environment, journey=journey, member_id=0)
    table = JourneyProgress._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (environment_id, journey_id, member_id, step_index, state, "  # noqa: S608
            "next_run_at, exit_reason, history, entered_at, updated_at) "
            "SELECT %s, %s, m, %s, %s, now(), %s, %s::jsonb, now(), now() "
            "FROM unnest(%s::bigint[]) AS m ON CONFLICT DO NOTHING",
            [
                environment.pk,
                journey.pk,
                fresh.step_index,
                fresh.state,
                fresh.exit_reason,
                json.dumps(fresh.history),
                "{" + ",".join(str(int(m)) for m in member_ids) + "}",
            ],
        )


#: Triggers whose events enter journeys and do nothing else: a batch of them (the matches
#: of a refresh of thousands of homes) enters with one query per environment and trigger.
_BATCHED = {"home_value_changed", "offer_matched", "offer_saved"}


def journey_events_sink(batch) -> None:
    """The batch form of journey_event_sink, for the events of one emit_many() call."""
    groups: dict[tuple[int, str], list[tuple[int, object]]] = {}
    for event in batch:
        if event.name not in _BATCHED:
            journey_event_sink(event)
        elif event.member_id is not None:
            key = (event.environment_id, EVENT_TRIGGERS[event.name])
            groups.setdefault(key, []).append((event.member_id, event.properties.get("change_pct")))
    for (environment_id, trigger), entries in groups.items():
        environment = Environment.objects.select_related("institution").get(pk=environment_id)
        with environment_scope(environment):
            journeys_enter_many(environment=environment, trigger=trigger, entries=entries)


def _exit(progress, reason: str) -> None:
    progress.state = JourneyProgress.State.EXITED
    progress.exit_reason = reason
    progress.history.append({"at": timezone.now().isoformat(), "exit": reason})


def journey_event_sink(event) -> None:
    """Member events (emitted by homes) enter members into journeys or make them exit."""
    trigger = EVENT_TRIGGERS.get(event.name)
    exits = {"offer_selected": "offer_selected", "member_opted_out": "opted_out"}.get(event.name)
    if (trigger is None and exits is None) or event.member_id is None:
        return
    environment = Environment.objects.select_related("institution").get(pk=event.environment_id)
    with environment_scope(environment):
        if trigger is not None:
            journeys_enter(
                environment=environment,
                trigger=trigger,
                member_ids=[event.member_id],
                change_pct=event.properties.get("change_pct"),
            )
            if trigger == Journey.Trigger.ENROLLED:
                from notifications.services.campaigns import welcome_series_enqueue

                member = Member.objects.get(pk=event.member_id)
                welcome_series_enqueue(environment=environment, members=[member])
        if exits is not None:
            for progress in JourneyProgress.objects.filter(
                environment=environment,
                member_id=event.member_id,
                state=JourneyProgress.State.ACTIVE,
            ).select_related("journey"):
                if exits in progress.journey.exit_conditions:
                    _exit(progress, exits)
                    progress.save()


def _check(progress, check: str) -> bool:
    from notifications.models import Delivery, PushSubscription

    member = progress.member
    last = (
        Delivery.objects.filter(
            environment=progress.environment_id,
            member=member,
            campaign_key__startswith=f"journey:{progress.journey_id}:",
            state=Delivery.State.SENT,
        )
        .order_by("-sent_at")
        .first()
    )
    if check == "opened_last":
        return bool(last and last.opened_at)
    if check == "clicked_last":
        return bool(last and last.clicked_at)
    if check == "has_push":
        return PushSubscription.objects.filter(member=member).exists()
    return member.enrollment == Member.Enrollment.ENROLLED


def _exit_reason(progress) -> str:
    exits = progress.journey.exit_conditions or []
    member = progress.member
    if "opted_out" in exits and member.enrollment == Member.Enrollment.OPTED_OUT:
        return "opted_out"
    if (
        "unsubscribed" in exits
        and Preference.objects.filter(member=member, channel=Channel.EMAIL, enabled=False).exists()
    ):
        return "unsubscribed"
    return ""


def _send_context(environment, progress) -> dict:
    """The journey's name and, when homes knows it, the member's home (the built-in
    templates a journey reuses speak of the home and its top offer)."""
    from notifications.services.campaigns import home_context, home_summaries

    context = {"journey": progress.journey.name}
    summary = home_summaries(environment, [progress.member_id]).get(progress.member_id)
    if summary is not None:
        context["home"] = home_context(environment, summary)
    return context


def journey_progress_advance(*, environment, progress, templates, now=None) -> None:
    """Run steps from where the member is until a wait, the end, or an exit."""
    journey = progress.journey
    now = now or timezone.now()
    reason = _exit_reason(progress)
    if reason:
        _exit(progress, reason)
        return
    steps = journey.steps
    while progress.step_index < len(steps):
        step = steps[progress.step_index]
        entry = {"at": now.isoformat(), "step": progress.step_index, "type": step.get("type")}
        if step["type"] == "wait":
            delta = timedelta(days=step.get("days", 0), hours=step.get("hours", 0))
            progress.step_index += 1
            progress.next_run_at = now + delta
            progress.history.append(entry)
            return
        if step["type"] == "send":
            source = templates.source(step["template"])
            plan = DeliveryPlan(
                campaign_key=f"journey:{journey.pk}:{progress.step_index}",
                template_key=step["template"],
                category=source["category"],
                contexts={progress.member_id: _send_context(environment, progress)},
                channels=(step["channel"],),
            )
            deliveries_enqueue(environment=environment, plan=plan, members=[progress.member])
            progress.step_index += 1
        elif step["type"] == "condition":
            passed = _check(progress, step["check"])
            entry["passed"] = passed
            if passed:
                progress.step_index += 1
            elif step.get("otherwise", "exit") == "skip":
                progress.step_index += 2
            else:
                progress.history.append(entry)
                _exit(progress, f"condition {step['check']} not met")
                return
        progress.history.append(entry)
    progress.state = JourneyProgress.State.COMPLETED


#: What advancing changes on a progress row (reloaded after a failed step).
_PROGRESS_FIELDS = ["step_index", "state", "next_run_at", "exit_reason", "history"]


def journeys_advance(*, environment, limit: int = 1000, now=None) -> int:
    """Advance every due progress row of the environment (beat)."""
    from notifications.services.rendering import RenderError, TemplateCache

    now = now or timezone.now()
    templates = TemplateCache(environment)
    due = list(
        JourneyProgress.objects.filter(
            environment=environment,
            state=JourneyProgress.State.ACTIVE,
            next_run_at__lte=now,
            journey__active=True,
        )
        .select_related("journey", "member")
        .order_by("next_run_at")[:limit]
    )
    for progress in due:
        try:
            with transaction.atomic():
                journey_progress_advance(
                    environment=environment, progress=progress, templates=templates, now=now
                )
                progress.save()
        except (OperationalError, InterfaceError):
            raise  # the database, not this member: the task fails, the row waits its turn
        except Exception as exc:
            # One member's failing step (a template gone, a step saved around validation)
            # stops that member only, visibly: its writes rolled back, the row exits with
            # the reason, and the other members advance.
            step = progress.step_index + 1
            if isinstance(exc, RenderError):
                reason = f"template missing: {exc}"
            else:
                logger.exception(
                    "journey %s, member %s: step %s failed",
                    progress.journey_id,
                    progress.member_id,
                    step,
                )
                reason = f"step {step} failed: {type(exc).__name__}: {exc}"
            progress.refresh_from_db(fields=_PROGRESS_FIELDS)
            _exit(progress, reason[:200])
            progress.save(update_fields=[*_PROGRESS_FIELDS, "updated_at"])
    return len(due)
