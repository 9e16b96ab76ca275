"""Revaluation: one property, a batch, or an environment-wide refresh run (resumable)."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from homes.models import Member, Property, RefreshRun, Valuation
from homes.selectors import home_settings
from homes.services.recompute import Recomputer
from homes.valuation.providers import providers_for, value_properties
from institutions import events

log = logging.getLogger(__name__)

VALUE_FIELDS = ["value", "value_low", "value_high", "confidence", "valued_on"]
REFRESH_BATCH = 1000


class Revaluer:
    """Values batches of properties with the environment's providers, then recomputes them."""

    def __init__(self, environment, *, as_of: date | None = None, estimator=None):
        self.environment = environment
        self.as_of = as_of or timezone.localdate()
        self.settings = home_settings(environment)
        self.providers = providers_for(
            environment, list(self.settings.provider_order), estimator=estimator
        )
        self.recomputer = Recomputer(environment, today=self.as_of, settings=self.settings)

    def revalue(self, properties: list[Property]) -> int:
        """Value, record the valuation (history), store equity and matches. Returns # valued."""
        chosen = value_properties(
            properties,
            self.providers,
            fsd_threshold=self.settings.fsd_threshold,
            as_of=self.as_of,
        )
        rows, changed = [], []
        for prop in properties:
            if prop.pk not in chosen:
                continue  # no provider answered within the threshold: keep the last value
            provider, result = chosen[prop.pk]
            change = _change_pct(prop.value, result.value)
            if change is not None:
                changed.append((prop, change))
            prop.value, prop.value_low, prop.value_high = result.value, result.low, result.high
            prop.confidence, prop.valued_on = result.confidence, self.as_of
            rows.append(
                Valuation(
                    environment=self.environment,
                    property=prop,
                    provider=provider,
                    value=result.value,
                    low=result.low,
                    high=result.high,
                    confidence=result.confidence,
                    fsd=result.fsd,
                    as_of=self.as_of,
                )
            )
        with transaction.atomic():
            Valuation.objects.bulk_create(
                rows,
                batch_size=REFRESH_BATCH,
                update_conflicts=True,
                unique_fields=["environment", "property", "provider", "as_of"],
                update_fields=["value", "low", "high", "confidence", "fsd"],
            )
            self.recomputer.apply(properties, extra_fields=VALUE_FIELDS)
            _emit_value_changes(self.environment, changed)
        return len(rows)


#: Changes smaller than this are noise from re-estimation, not news for a member.
VALUE_CHANGE_EVENT_MIN_PCT = Decimal("1.0")


def _change_pct(previous, current) -> Decimal | None:
    if not previous or current is None:
        return None
    pct = ((current - previous) / previous * 100).quantize(Decimal("0.1"))
    return pct if abs(pct) >= VALUE_CHANGE_EVENT_MIN_PCT else None


def _emit_value_changes(environment, changed) -> None:
    if not changed:
        return
    members = Member.objects.in_bulk({prop.member_id for prop, _ in changed if prop.member_id})
    events.emit_many(
        environment=environment,
        items=[
            (
                "home_value_changed",
                members.get(prop.member_id),
                {"property_id": prop.pk, "change_pct": float(change)},
            )
            for prop, change in changed
            if prop.member_id in members
        ],
    )


def property_revalue(*, environment, prop: Property, as_of: date | None = None) -> bool:
    """Revalue one property now (e.g. when it is created); True when a provider answered."""
    return Revaluer(environment, as_of=as_of).revalue([prop]) == 1


def refresh_start(*, environment, actor=None, actor_label: str = "", enqueue=True) -> RefreshRun:
    """Create a refresh run of every property of the environment and queue it."""
    run = RefreshRun.objects.create(
        environment=environment,
        as_of=timezone.localdate(),
        total=Property.objects.filter(environment=environment).count(),
        requested_by=actor_label or (getattr(actor, "get_username", lambda: "")() or ""),
    )
    if enqueue:
        from homes.tasks import refresh_valuations

        transaction.on_commit(lambda: refresh_valuations.delay(environment.pk, run.pk))
    return run


class RefreshStopped(Exception):
    """Raised by `stop_after` in tests to simulate an interrupted worker."""


def refresh_run(
    *,
    environment,
    run: RefreshRun,
    batch_size: int = REFRESH_BATCH,
    stop_after: int | None = None,
    estimator=None,
) -> RefreshRun:
    """Process a refresh run from its cursor to the end. Each batch commits with the cursor,
    so a run interrupted anywhere resumes after the last committed batch."""
    if run.status == RefreshRun.Status.DONE:
        return run
    RefreshRun.objects.filter(pk=run.pk).update(
        status=RefreshRun.Status.RUNNING,
        started_at=run.started_at or timezone.now(),
        heartbeat_at=timezone.now(),
        error="",
    )
    run.refresh_from_db()
    revaluer = Revaluer(environment, as_of=run.as_of, estimator=estimator)
    batches = 0
    try:
        while True:
            batch = list(
                Property.objects.filter(environment=environment, pk__gt=run.cursor).order_by("pk")[
                    :batch_size
                ]
            )
            if not batch:
                break
            if stop_after is not None and batches >= stop_after:
                raise RefreshStopped(f"stopped after {batches} batches")
            with transaction.atomic():
                valued = revaluer.revalue(batch)
                run.cursor = batch[-1].pk
                run.processed += len(batch)
                run.valued += valued
                run.heartbeat_at = timezone.now()
                run.save(update_fields=["cursor", "processed", "valued", "heartbeat_at"])
            batches += 1
    except Exception as error:
        RefreshRun.objects.filter(pk=run.pk).update(
            status=RefreshRun.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        raise
    run.status, run.finished_at = RefreshRun.Status.DONE, timezone.now()
    run.total = max(run.total, run.processed)
    run.save(update_fields=["status", "finished_at", "total"])
    log.info("refresh %s done: %s", run.pk, run.progress_text)
    return run
