"""What mock generation and the anonymized copy share: who may run them, the staging key,
clearing staging's member data, and recomputing equity and offers afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import models

from homes.models import Appointment, Member, Property
from homes.services import properties_recompute
from homes.services.erasure import member_erase
from institutions import events
from institutions.models import Environment
from institutions.tenancy import environment_scope
from releases.models import StagingDataKey
from releases.services.common import ReleaseRefused, roles_of

Progress = Callable[[str, int, int], None]
RUN_ROLES = frozenset({"admin", "it"})
RECOMPUTE_CHUNK = 2000


def no_progress(step: str, done: int, total: int) -> None:
    return None


def sink_domain() -> str:
    return settings.STAGING_EMAIL_SINK_DOMAIN


def check_can_fill(environment: Environment, actor, what: str) -> None:
    """Staging only, and (from the admin) the IT or admin role of its institution."""
    if not environment.is_staging:
        raise ReleaseRefused(f"{what} goes into staging only; production is never overwritten.")
    if actor is not None and not roles_of(actor, environment.institution) & RUN_ROLES:
        raise ReleaseRefused(f"{what} replaces staging's members: it needs the IT or admin role.")


def staging_key(environment: Environment) -> str:
    """The environment's pseudonym secret, made on first use."""
    row = StagingDataKey._base_manager.filter(environment=environment).first()
    if row is None:
        row, _ = StagingDataKey._base_manager.get_or_create(environment=environment)
    return row.key


def lock(environment: Environment) -> None:
    """One fill of an environment at a time (the caller holds the transaction).

    The lock leaves the row's key alone (no_key): the environment's configuration (its
    branding, offers, flags, audit entries refer to the row) is still edited while a fill
    runs, for minutes at volume; two fills still take turns.
    """
    Environment.objects.select_for_update(no_key=True).filter(pk=environment.pk).first()


# -- clearing ----------------------------------------------------------------------------


def _member_links() -> list[models.ManyToManyField]:
    """Many-to-many fields naming members from configuration (e.g. a flag's members)."""
    return [
        f
        for model in apps.get_models()
        for f in model._meta.many_to_many
        if f.related_model is Member and model is not Member
    ]


def calendars_vacate(environment: Environment, *, actor=None, actor_label: str = "") -> set[int]:
    """Take staging's appointments off the officers' calendars before their members go.

    A member who has an appointment written to a calendar is erased as on request
    (homes.services.erasure): the upcoming appointments are cancelled, their events removed
    once committed (retried while the calendar server is down), and the others rewritten
    without the member. Returns the members to keep, as erased tombstones, while their
    calendar writes are still to do: the sync needs their appointments after the commit.
    A later fill clears them once written.
    """
    on_calendar = (
        Appointment._base_manager.filter(environment=environment, member__erased_at__isnull=True)
        .exclude(caldav_state=Appointment.CalendarSync.NONE)
        .exclude(status=Appointment.Status.CANCELLED, caldav_state=Appointment.CalendarSync.SYNCED)
    )
    member_ids = set(on_calendar.values_list("member_id", flat=True))
    for member in Member._base_manager.filter(pk__in=member_ids).order_by("pk"):
        member_erase(environment=environment, member=member, actor=actor, actor_label=actor_label)
    waiting = Appointment._base_manager.filter(
        environment=environment,
        member__erased_at__isnull=False,
        caldav_state__in=[Appointment.CalendarSync.PENDING, Appointment.CalendarSync.FAILED],
    )
    return set(waiting.values_list("member_id", flat=True))


def member_data_clear(
    environment: Environment,
    data_models: list[type[models.Model]],
    progress: Progress = no_progress,
    *,
    actor=None,
    actor_label: str = "",
) -> Callable[[], int]:
    """Delete the environment's rows of `data_models` (members, homes, recorded sales...),
    with everything that hangs on them, after taking their appointments off the officers'
    calendars (`calendars_vacate`). Returns a function that re-links configuration
    that named members (a flag's members) to the new members with the same external id;
    it returns how many links it made."""
    kept = []
    for f in _member_links():
        through = f.remote_field.through
        source, target = f.m2m_field_name(), f.m2m_reverse_field_name()
        rows = through._base_manager.filter(**{f"{target}__environment": environment})
        kept.append((f, list(rows.values_list(f"{source}_id", f"{target}__external_id"))))
    tombstones = calendars_vacate(environment, actor=actor, actor_label=actor_label)
    # Dependents first: each of those goes in one statement, not row by row.
    for done, model in enumerate(reversed(data_models)):
        progress("clearing staging", done, len(data_models))
        rows = model._base_manager.filter(environment=environment)
        if model is Member:
            rows = rows.exclude(pk__in=tombstones)
        rows.delete()
    progress("clearing staging", len(data_models), len(data_models))

    def relink() -> int:
        linked = 0
        for f, pairs in kept:
            wanted = {ext for _, ext in pairs if ext}
            members = dict(
                Member._base_manager.filter(
                    environment=environment, external_id__in=wanted
                ).values_list("external_id", "pk")
            )
            owners: dict[int, list[int]] = {}
            for owner, ext in pairs:
                if ext in members:
                    owners.setdefault(owner, []).append(members[ext])
            for owner in f.model._base_manager.filter(pk__in=owners):
                getattr(owner, f.name).add(*owners[owner.pk])  # signals refresh caches
                linked += len(owners[owner.pk])
        return linked

    return relink


def homes_recompute(
    environment: Environment, progress: Progress, *, today: dt.date | None = None
) -> int:
    """Equity, LTV and offer matches of every staging home, from staging's own offers, with
    lien balances amortized to `today`: the day the data describes (a mock data set's day;
    by default the institution's today, read once so a run that crosses midnight computes
    every home as of the same day).

    A mock data set made as of a past day has its balances and values as of that day, so its
    figures are computed as of that day too. They are stamped with the real moment, so from
    the institution's next midnight the hourly equity tick recomputes them to the real
    today, like any home's (balances only amortize forward: one dated after the tick's
    today is kept as it is).

    Events are muted: a data load is not member activity (no journeys, no analytics).
    """
    today = today or environment.institution.today()
    ids = list(
        Property._base_manager.filter(environment=environment)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    progress("equity and offers", 0, len(ids))
    with environment_scope(environment), events.muted():
        for start in range(0, len(ids), RECOMPUTE_CHUNK):
            chunk = ids[start : start + RECOMPUTE_CHUNK]
            properties_recompute(environment=environment, property_ids=chunk, today=today)
            progress("equity and offers", start + len(chunk), len(ids))
    return len(ids)
