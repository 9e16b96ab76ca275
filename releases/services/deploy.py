"""Scheduling and deploying: inside windows, atomically, never over a changed production."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django_scopes import scopes_disabled

from institutions.models import AuditEntry, Environment
from institutions.services import audit_record
from institutions.tenancy import environment_scope
from releases.apply import apply_snapshot
from releases.diff import diff_snapshots, summarize
from releases.models import Release
from releases.services.common import (
    ReleaseRefused,
    audit_release,
    check_release_environment,
    mail_after_commit,
    now,
    policy_for,
    production_of,
    role_names,
    roles_of,
)
from releases.services.create import ensure_current
from releases.services.signoff import missing_roles
from releases.signals import release_deployed
from releases.snapshot import capture, snapshot_hash
from releases.windows import is_open, next_opening

DEPLOY_ROLES = frozenset({"admin", "it"})

#: Beat dispatches due deploys each minute: one planned inside a window (in its last
#: minute, say) still runs when its tick lands a little after the window closed. A worker
#: down for hours does not deploy at peak time.
LATE_GRACE = dt.timedelta(minutes=15)


class _Conflict(Exception):
    def __init__(self, entries: list[dict]):
        super().__init__("production changed")
        self.entries = entries


def _not_deployable(release: Release) -> str | None:
    state = Release.State
    if release.state in (state.APPROVED, state.SCHEDULED):
        return None
    if release.state == state.PENDING:
        return (
            f"Release #{release.number} still needs sign-off from "
            f"{role_names(missing_roles(release))}."
        )
    if release.state == state.REJECTED:
        return f"Release #{release.number} was rejected: {release.state_reason}"
    if release.state == state.SUPERSEDED:
        return f"Release #{release.number} is superseded: {release.state_reason}"
    if release.state == state.CONFLICT:
        return (
            f"Release #{release.number} was stopped because production changed after its "
            "snapshot; make a new release from staging."
        )
    return f"Release #{release.number} is already {release.get_state_display().lower()}."


def window_refusal(environment: Environment, moment: dt.datetime) -> str | None:
    """None when `moment` is inside a deploy window, else a sentence naming the next one."""
    institution = environment.institution
    policy = policy_for(institution)
    windows, freezes = list(policy.windows.all()), list(policy.freezes.all())
    tz = institution.tz
    if is_open(windows, freezes, tz, moment):
        return None
    opening = next_opening(windows, freezes, tz, moment)
    local = moment.astimezone(tz)
    when = f"{local:%A %d %B %Y %H:%M} ({local.tzname()})"
    following = (
        f"the next window opens {opening.describe()}"
        if opening
        else "no deploy window is set for the coming year"
    )
    return f"{when} is outside {institution}'s deploy windows; {following}."


def release_schedule(
    *, environment: Environment, release: Release, at: dt.datetime, actor, reason: str = ""
) -> Release:
    """Plan the deploy for a moment inside a window (outside one: admin role and a reason)."""
    check_release_environment(environment, release)
    ensure_current(environment, release)
    refusal = _not_deployable(release)
    if refusal:
        raise ReleaseRefused(refusal)
    roles = roles_of(actor, environment.institution)
    if not roles & DEPLOY_ROLES:
        # Scheduling is deciding to deploy: the same roles as "Deploy now".
        raise ReleaseRefused("Scheduling a deploy needs the IT or admin role.")
    if at.tzinfo is None:
        raise ReleaseRefused("Give the deploy time with its time zone.")
    if at <= now():
        raise ReleaseRefused("That time has already passed: choose a time in the future.")
    reason = reason.strip()
    refusal = window_refusal(environment, at)
    if refusal and not ("admin" in roles and reason):
        raise ReleaseRefused(
            refusal + " Deploying outside a window needs the admin role and a reason."
        )
    with transaction.atomic():
        release.state = Release.State.SCHEDULED
        release.scheduled_for = at
        release.scheduled_by = actor
        release.scheduled_at = now()
        release.window_override_reason = reason if refusal else ""
        release.state_reason = f"Deploys at {at.astimezone(environment.institution.tz):%c %Z}."
        release.save()
        audit_release(
            release,
            what=f"scheduled for {at.isoformat()}" + (" outside the windows" if refusal else ""),
            actor=actor,
            reason=release.window_override_reason,
        )
    return release


def lock_production(production: Environment) -> None:
    """Hold production's row until the transaction ends, before reading production.

    Deploys, rollbacks and emergency changes take turns on it: each one checks production
    as the one before left it (and stops on the drift it finds), rather than two of them
    checking the same production and then both writing it. The lock leaves the row's key
    alone (no_key): members' rows that refer to production are still written meanwhile.
    """
    Environment.objects.select_for_update(no_key=True).filter(pk=production.pk).first()


def _tell_scheduler(
    environment: Environment, release: Release, planned, scheduler, why: str = ""
) -> None:
    """Mail whoever scheduled the release, and its author, that the deploy did not run."""
    when = f" for {planned.astimezone(environment.institution.tz):%c %Z}" if planned else ""
    mail_after_commit(
        f"{environment.institution}: release #{release.number} was not deployed",
        f"Release #{release.number} was scheduled{when} but did not deploy.\n\n"
        f"{why or release.last_error}\n",
        [scheduler, release.author],
    )


def _record_failure(release: Release, **fields) -> None:
    with transaction.atomic():
        Release._base_manager.filter(pk=release.pk).update(**fields)
        release.refresh_from_db()
        audit_release(release, what="deploy stopped", reason=fields.get("last_error", ""))


def release_deploy(
    *,
    environment: Environment,
    release: Release,
    actor,
    reason: str = "",
    scheduled: bool = False,
) -> Release:
    """Make production exactly the release's snapshot, in one transaction.

    `scheduled` deploys come from the beat dispatcher at or after the planned time; manual
    deploys need the IT or admin role, and outside a window the admin role and a reason.
    """
    check_release_environment(environment, release)
    if release.kind == Release.Kind.PROMOTION:
        planned, scheduler = release.scheduled_for, release.scheduled_by
        was_scheduled = release.state == Release.State.SCHEDULED
        try:
            ensure_current(environment, release)
        except ReleaseRefused as refusal:
            if scheduled and was_scheduled and release.state == Release.State.SUPERSEDED:
                # Staging moved on since the sign-offs: whoever planned the deploy must hear
                # that it did not happen, not find out from the admin later.
                _tell_scheduler(environment, release, planned, scheduler, why=refusal.message)
            raise
    refusal = _not_deployable(release)
    if refusal:
        raise ReleaseRefused(refusal)
    moment = now()
    reason = reason.strip()
    if scheduled:
        if release.state != Release.State.SCHEDULED or release.scheduled_for > moment:
            raise ReleaseRefused(f"Release #{release.number} is not due yet.")
        closed = window_refusal(environment, moment)
        planned = release.scheduled_for
        # An admin's override covers the time they chose, not whenever a worker that was
        # down gets to it: past the grace it needs a window like any other deploy.
        on_time = moment - planned <= LATE_GRACE and (
            bool(release.window_override_reason) or not window_refusal(environment, planned)
        )
        if closed and not on_time:
            scheduler = release.scheduled_by
            if release.window_override_reason:
                why = (
                    "The deploy ran too late for its window override, which covers the "
                    f"planned time only: {closed}"
                )
            else:
                why = "The deploy window closed before the deploy could run: " + closed
            _record_failure(
                release,
                state=Release.State.APPROVED,
                scheduled_for=None,
                last_error=why + " Schedule it again.",
            )
            _tell_scheduler(environment, release, planned, scheduler)
            raise ReleaseRefused(release.last_error)
    elif release.kind == Release.Kind.PROMOTION:
        roles = roles_of(actor, environment.institution)
        if not roles & DEPLOY_ROLES:
            raise ReleaseRefused("Deploying needs the IT or admin role.")
        closed = window_refusal(environment, moment)
        if closed and not ("admin" in roles and reason):
            raise ReleaseRefused(
                "Now is outside the deploy windows: "
                + closed
                + " Deploying outside a window needs the admin role and a reason."
            )
    production = production_of(environment)
    target = release  # the caller's instance, refreshed at the end
    try:
        with transaction.atomic():
            release = Release._base_manager.select_for_update().get(pk=release.pk)
            refusal = _not_deployable(release)
            if refusal:  # deployed by a concurrent run a moment ago
                raise ReleaseRefused(refusal)
            if scheduled and (
                release.state != Release.State.SCHEDULED or release.scheduled_for > moment
            ):  # cancelled or moved since the dispatcher found it due
                raise ReleaseRefused(f"Release #{release.number} is no longer scheduled now.")
            lock_production(production)
            current = capture(production)
            if snapshot_hash(current) != release.base_hash:
                raise _Conflict(diff_snapshots(release.base_snapshot, current))
            with environment_scope(production):
                changes = apply_snapshot(
                    environment=production, snapshot=release.snapshot, release=release
                )
            _audit_changes(production, release, changes, actor)
            _mark_deployed(release, current, actor, reason)
            audit_release(
                release,
                what=f"deployed to production ({summarize(release.diff)})",
                actor=actor,
                reason=reason or release.window_override_reason,
            )
            labels = frozenset(change.label for change in changes)
            transaction.on_commit(
                lambda: release_deployed.send(
                    Release, environment=production, release=release, labels=labels
                )
            )
    except _Conflict as conflict:
        _record_failure(
            release,
            state=Release.State.CONFLICT,
            conflict=conflict.entries,
            last_error=(
                "Production changed after the snapshot (" + summarize(conflict.entries) + "); "
                "the deploy stopped and production is unchanged."
            ),
        )
        if scheduled:
            _tell_scheduler(environment, release, release.scheduled_for, release.scheduled_by)
        raise ReleaseRefused(release.last_error) from None
    except ReleaseRefused:
        raise
    except Exception as exc:
        before = target.last_error
        _record_failure(target, last_error=f"Deploy failed, production unchanged: {exc}")
        if scheduled and target.last_error != before:
            # The dispatcher tries again each minute; whoever planned the deploy hears of
            # the failure once (and again only if it changes), not from the admin later.
            _tell_scheduler(environment, target, target.scheduled_for, target.scheduled_by)
        raise
    target.refresh_from_db()
    return target


def _mark_deployed(release: Release, previous: dict, actor, reason: str) -> None:
    moment = now()
    release.previous_snapshot = previous
    release.state = Release.State.DEPLOYED
    release.state_reason = ""
    release.deployed_at = moment
    release.deployed_by = actor
    release.deploy_reason = reason
    release.last_error = ""
    if release.kind == Release.Kind.PROMOTION:
        policy = policy_for(release.environment.institution)
        release.watch_state = Release.Watch.WATCHING
        release.watch_until = moment + dt.timedelta(minutes=policy.watch_minutes)
    release.save()


def _audit_changes(production: Environment, release: Release, changes, actor) -> None:
    actions = {
        "added": AuditEntry.Action.CREATE,
        "changed": AuditEntry.Action.UPDATE,
        "removed": AuditEntry.Action.DELETE,
        "retired": AuditEntry.Action.UPDATE,
        "restored": AuditEntry.Action.UPDATE,
    }
    for change in changes:
        audit_record(
            action=actions[change.change],
            actor=actor,
            actor_label="" if actor else "release automation",
            environment=production,
            object_type=change.label,
            object_id=change.key[:64],
            object_repr=str(change.obj)[:200],
            changes={"fields": change.fields, "change": change.change},
            reason=f"Release #{release.number}",
        )


def releases_due(moment: dt.datetime) -> list[tuple[int, int]]:
    """(environment id, release id) of scheduled releases whose time has come, all tenants."""
    with scopes_disabled():
        return list(
            Release._base_manager.filter(
                state=Release.State.SCHEDULED, scheduled_for__lte=moment
            ).values_list("environment_id", "pk")
        )
