"""Refresh runs: revalue every home of an environment (or those waiting for a valuation,
e.g. after a vendor upload), then equity and offer matches.

A run is split into chunks of consecutive property ids. Celery workers process chunks in
parallel; a chunk commits batch by batch together with its cursor, so a run interrupted
anywhere resumes after the last committed batch of each chunk. The run holds the totals
that the admin and the management command show.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Case, F, Max, Min, Q, Value, When
from django.utils import timezone

from homes.models import Property, RefreshChunk, RefreshRun
from homes.selectors import home_settings
from homes.services.recompute import home_rows
from homes.services.valuations import Revaluer
from homes.valuation.providers import production_order, sales_estimator
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record

log = logging.getLogger(__name__)

REFRESH_BATCH = 5000  # homes per transaction (the estimator values large batches faster)
REFRESH_CHUNK = 10_000  # homes per chunk (a unit of work for one worker)
Status = RefreshRun.Status
Scope = RefreshRun.Scope
# A run that no worker has touched for this long was interrupted: it no longer stops a new
# one (a batch takes seconds; building the estimator, under a minute).
REFRESH_STALE_AFTER = timedelta(minutes=10)


class RefreshStopped(Exception):
    """Raised by `stop_after` in tests to simulate an interrupted worker."""


class RefreshInProgress(Exception):
    """A refresh of the environment is still going: a second would revalue every home twice."""

    def __init__(self, run: RefreshRun) -> None:
        self.run = run
        super().__init__(
            f"Refresh {run.pk} of this environment is still {run.get_status_display().lower()} "
            f"({run.progress_text}): wait for it to finish. If it stopped, resume it; after "
            f"{REFRESH_STALE_AFTER.seconds // 60} minutes without progress a new one may start."
        )


def refresh_in_progress(environment, *, other_than: RefreshRun | None = None) -> RefreshRun | None:
    """The environment's unfinished run that a worker touched recently (or queued recently);
    `other_than` is left out (the run being resumed)."""
    recent = timezone.now() - REFRESH_STALE_AFTER
    runs = RefreshRun.objects.filter(
        environment=environment, status__in=[Status.PENDING, Status.RUNNING]
    )
    if other_than is not None:
        runs = runs.exclude(pk=other_than.pk)
    for run in runs:
        if max(run.created_at, run.heartbeat_at or run.created_at) >= recent:
            return run
    return None


def refresh_start(
    *,
    environment,
    actor=None,
    actor_label: str = "",
    enqueue=True,
    chunk_size: int = REFRESH_CHUNK,
) -> RefreshRun:
    """Create a refresh run of every property of the environment and queue it.

    Raises RefreshInProgress while another run of the environment is going; two staff
    starting one at the same moment are serialized on the environment's row. The run is
    queued once it commits, and `run.queued` says whether the task queue took it: False
    when the queue was unreachable (the run stays pending, to resume once the queue is
    back), None while the caller's transaction is still open or with enqueue=False.
    """
    with transaction.atomic():
        Environment.objects.select_for_update().filter(pk=environment.pk).first()
        running = refresh_in_progress(environment)
        if running is not None:
            raise RefreshInProgress(running)
        ids = list(
            Property.objects.filter(environment=environment)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        run = RefreshRun.objects.create(
            environment=environment,
            as_of=environment.institution.today(),
            total=len(ids),
            requested_by=_requested_by(actor, actor_label),
        )
        _chunks_create(run, ids, chunk_size)
        reason = f"refresh started: {len(ids):,} properties"
        _recorded_and_queued(environment, run, actor, actor_label, reason, enqueue)
    return run


def refresh_waiting_start(
    *,
    environment,
    property_ids: list[int],
    reason: str,
    actor=None,
    actor_label: str = "",
    enqueue=True,
    chunk_size: int = REFRESH_CHUNK,
) -> RefreshRun:
    """Mark these properties as waiting for a valuation and create a run that revalues
    them, queued once the caller's transaction commits (homes.services.vendor).

    Each revaluation clears its home's mark, so the run goes on with the homes still
    waiting. Nothing is lost when the run's task is never queued or the run stops: the
    run shows it in the admin, where staff resume it, and homes.equity_tick revalues the
    homes left waiting past homes.services.sync.REFRESH_GRACE, then closes a run that never
    went (refresh_waiting_close). Not refused while another run goes, as refresh_start is:
    the caller's data is stored already, and a home another run revalues meanwhile is no
    longer waiting.
    """
    ids = sorted(set(property_ids))
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(ids), REFRESH_BATCH):
            Property.objects.filter(
                environment=environment, pk__in=ids[start : start + REFRESH_BATCH]
            ).update(valuation_requested_at=now)
        run = RefreshRun.objects.create(
            environment=environment,
            scope=Scope.WAITING,
            as_of=environment.institution.today(),
            total=len(ids),
            requested_by=_requested_by(actor, actor_label),
        )
        _chunks_create(run, ids, chunk_size)
        _recorded_and_queued(environment, run, actor, actor_label, reason, enqueue)
    return run


def _requested_by(actor, actor_label: str) -> str:
    return actor_label or (getattr(actor, "get_username", lambda: "")() or "")


def _queue_quietly(environment_id: int, run_id: int) -> bool:
    """Queue a committed run; False when the task queue cannot take it. A broker that is
    down must not turn the caller's stored data into an error: the run waits, pending, for
    a resume (and a waiting run's homes for homes.equity_tick, after the grace period)."""
    from kombu.exceptions import OperationalError

    from homes.tasks import refresh_valuations

    try:
        refresh_valuations.delay(environment_id, run_id)
    except (OperationalError, OSError):
        # Only the queue's own failures: an error of a task run eagerly (tests) still raises.
        log.exception(
            "Could not queue refresh %s of environment %s: it stays pending; resume it in "
            "the admin (or homes_refresh --resume) once the task queue is back.",
            run_id,
            environment_id,
        )
        return False
    return True


def _recorded_and_queued(environment, run, actor, actor_label, reason, enqueue) -> None:
    """In the caller's transaction: the request in the audit trail, and the run queued
    once it commits (enqueue=False: the caller runs it). Whether the task queue took it
    is kept in `run.queued` for the caller to tell (see refresh_start)."""
    audit_record(
        action=AuditEntry.Action.ACTION,
        actor=actor,
        actor_label=actor_label,
        environment=environment,
        obj=run,
        reason=reason,
    )
    run.queued = None
    if enqueue:

        def queue() -> None:
            run.queued = _queue_quietly(environment.pk, run.pk)

        transaction.on_commit(queue)


def _chunks_create(run: RefreshRun, ids: list[int], chunk_size: int) -> None:
    chunks, after = [], run.cursor
    for start in range(0, len(ids), chunk_size):
        last = ids[min(start + chunk_size, len(ids)) - 1]
        chunks.append(
            RefreshChunk(
                environment_id=run.environment_id,
                run=run,
                after_id=after,
                last_id=last,
                cursor=after,
            )
        )
        after = last
    RefreshChunk.objects.bulk_create(chunks)


def _ensure_chunks(run: RefreshRun) -> None:
    """A run made before runs had chunks continues after its cursor in one chunk."""
    if run.status != Status.DONE and not run.chunks.exists():
        ids = list(
            Property.objects.filter(environment_id=run.environment_id, pk__gt=run.cursor)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _chunks_create(run, ids, max(len(ids), 1))


def refresh_resume(*, environment, run: RefreshRun) -> list[int]:
    """Queue the unfinished chunks of a run (new, interrupted or failed) for the workers;
    returns their ids."""
    from homes.tasks import refresh_chunk

    if run.status == Status.DONE or _failed_without_provider(environment, run):
        return []
    with transaction.atomic():
        _ensure_chunks(run)
        RefreshChunk.objects.filter(run=run, status=Status.FAILED).update(status=Status.PENDING)
        _run_running(run)
        pending = list(run.chunks.exclude(status=Status.DONE).values_list("pk", flat=True))
        transaction.on_commit(
            lambda: [refresh_chunk.delay(environment.pk, run.pk, pk) for pk in pending]
        )
    if not pending:
        _run_finish_if_complete(run.pk)
    return pending


def refresh_continue(
    *, environment, run: RefreshRun, actor=None, actor_label: str = "", enqueue=True
) -> None:
    """Staff ask an unfinished run to go on from where its chunks stopped: recorded in the
    audit trail, then queued (or, with enqueue=False, left to the caller to run);
    `run.queued` as for refresh_start.

    Raises RefreshInProgress, as refresh_start does, while another run of the environment
    is going: resuming this one beside it would revalue every home twice. Checked on the
    environment's row, and the run is pending again (as a new one is) before the lock goes,
    so two staff resuming two runs at the same moment cannot both go.
    """
    with transaction.atomic():
        Environment.objects.select_for_update().filter(pk=environment.pk).first()
        running = refresh_in_progress(environment, other_than=run)
        if running is not None:
            raise RefreshInProgress(running)
        RefreshRun.objects.filter(pk=run.pk).exclude(status=Status.DONE).update(
            status=Case(
                When(status=Status.FAILED, then=Value(Status.PENDING)), default=F("status")
            ),
            heartbeat_at=timezone.now(),
        )
        run.refresh_from_db()
        reason = f"refresh resumed at {run.progress_text}"
        _recorded_and_queued(environment, run, actor, actor_label, reason, enqueue)


def refresh_chunk_run(*, environment, run_id: int, chunk_id: int, estimator=None) -> None:
    """Process one chunk of a run to its end (what a worker does), then close the run if
    it was the last."""
    run = RefreshRun.objects.get(pk=run_id)
    if estimator is None:
        estimator = _run_estimator(environment, run)
    revaluer = _revaluer(environment, estimator)
    _chunk_process(environment, run, chunk_id, revaluer, REFRESH_BATCH, _Budget(None))
    _run_finish_if_complete(run.pk)


def refresh_run(
    *,
    environment,
    run: RefreshRun,
    batch_size: int = REFRESH_BATCH,
    stop_after: int | None = None,
    estimator=None,
    progress: Callable[[RefreshRun], None] | None = None,
) -> RefreshRun:
    """Process a whole run here, chunk after chunk (the management command; tests).
    `progress` is called with the run after each chunk."""
    if run.status == Status.DONE:
        return run
    if _failed_without_provider(environment, run):
        run.refresh_from_db()
        return run
    with transaction.atomic():
        _ensure_chunks(run)
        _run_running(run)
    revaluer = _revaluer(environment, estimator)
    budget = _Budget(stop_after)
    for chunk_id in run.chunks.exclude(status=Status.DONE).values_list("pk", flat=True):
        _chunk_process(environment, run, chunk_id, revaluer, batch_size, budget)
        if progress is not None:
            run.refresh_from_db()
            progress(run)
    _run_finish_if_complete(run.pk)
    run.refresh_from_db()
    return run


def _failed_without_provider(environment, run: RefreshRun) -> bool:
    """Fail the run, saying why, when the environment has no provider to value with: a
    production whose promoted order lists only the mock (which it skips) would otherwise
    report the run done with no home valued, and every member's value only get older."""
    order = list(home_settings(environment).provider_order)
    if not environment.is_production or production_order(order):
        return False
    error = (
        f"No valuation provider: the home settings' provider_order {json.dumps(order)} lists "
        "none that production uses (it skips the mock), so no home would be valued. Release "
        'an order with "comparable" or "vendor" from staging, then resume this run.'
    )
    RefreshRun.objects.filter(pk=run.pk).update(status=Status.FAILED, error=error)
    log.error("Refresh %s of environment %s not run: %s", run.pk, environment.pk, error)
    return True


def _revaluer(environment, estimator) -> Revaluer:
    """Batches are valued, and their equity computed, as of the institution's today, also
    those of a run started on an earlier day and resumed now (`run.as_of` is the day it
    started): a value of yesterday's would put back what a home got since, and balances
    amortized to yesterday would be stored as computed now."""
    return Revaluer(environment, as_of=environment.institution.today(), estimator=estimator)


class _Budget:
    def __init__(self, batches: int | None) -> None:
        self.left = batches

    def spend(self) -> None:
        if self.left is not None:
            if self.left <= 0:
                raise RefreshStopped("stopped before the next batch")
            self.left -= 1


def _chunk_process(environment, run, chunk_id, revaluer, batch_size, budget) -> None:
    RefreshChunk.objects.filter(pk=chunk_id).exclude(status=Status.DONE).update(
        status=Status.RUNNING, error="", heartbeat_at=timezone.now()
    )
    try:
        while _chunk_batch(environment, run, chunk_id, revaluer, batch_size, budget):
            pass
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        RefreshChunk.objects.filter(pk=chunk_id).update(status=Status.FAILED, error=message)
        RefreshRun.objects.filter(pk=run.pk).update(status=Status.FAILED, error=message)
        raise


def _chunk_batch(environment, run, chunk_id, revaluer, batch_size, budget) -> bool:
    """Revalue the chunk's next batch and commit it with the cursor; False when done."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A batch lost in a crash is redone on resume (its cursor is lost with it), so
            # it need not wait for its commit to reach the disk.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The lock makes a chunk queued twice (a resume while a worker still runs it)
        # proceed batch after batch instead of revaluing the same homes twice.
        chunk = RefreshChunk.objects.select_for_update().get(pk=chunk_id)
        if chunk.status == Status.DONE:
            return False
        budget.spend()
        rows = home_rows(
            environment,
            after=chunk.cursor,
            upto=chunk.last_id,
            waiting=run.scope == Scope.WAITING,
            limit=batch_size,
        )
        valued = revaluer.revalue_rows(rows) if rows else 0
        now = timezone.now()
        chunk.processed += len(rows)
        chunk.valued += valued
        chunk.cursor = rows[-1].pk if rows else chunk.last_id
        if len(rows) < batch_size:
            chunk.status, chunk.cursor = Status.DONE, chunk.last_id
        chunk.heartbeat_at = now
        chunk.save(update_fields=["processed", "valued", "cursor", "status", "heartbeat_at"])
        RefreshRun.objects.filter(pk=run.pk).update(
            processed=F("processed") + len(rows),
            valued=F("valued") + valued,
            cursor=_watermark(run.pk),
            heartbeat_at=now,
        )
    return chunk.status != Status.DONE


def _watermark(run_id: int) -> int:
    """Every property up to this id is done: the lowest cursor of an unfinished chunk."""
    chunks = RefreshChunk.objects.filter(run_id=run_id)
    low = chunks.exclude(status=Status.DONE).aggregate(low=Min("cursor"))["low"]
    return low if low is not None else chunks.aggregate(high=Max("last_id"))["high"] or 0


def _run_running(run: RefreshRun) -> None:
    now = timezone.now()
    RefreshRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING, started_at=run.started_at or now, heartbeat_at=now, error=""
    )
    run.refresh_from_db()


def _run_finish_if_complete(run_id: int) -> bool:
    with transaction.atomic():
        run = RefreshRun.objects.select_for_update().get(pk=run_id)
        if run.status == Status.DONE:
            return True
        if run.chunks.exclude(status=Status.DONE).exists():
            return False
        run.status, run.finished_at = Status.DONE, timezone.now()
        # Every home left in the chunks was processed; those deleted during the run were
        # counted at its start, and would leave a finished run short of 100%.
        run.total = run.processed
        run.cursor = _watermark(run.pk)
        run.save(update_fields=["status", "finished_at", "total", "cursor"])
    log.info("refresh %s done: %s", run.pk, run.progress_text)
    return True


def refresh_waiting_close(*, environment, older_than) -> list[int]:
    """Close the waiting runs that never went (their task could not be queued, or was
    lost) once none of their properties is waiting any more; returns their ids.

    homes.equity_tick revalues the properties left waiting past the grace period, and then
    calls this with the same cutoff: a run made before it, pending, that no worker touched
    since, shows as done (100%) instead of pending for ever. A run going, or one with a
    property still waiting, is left alone; so is a failed one, whose error staff should see.
    """
    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=older_than)
    candidates = RefreshRun.objects.filter(
        stale,
        environment=environment,
        scope=Scope.WAITING,
        status=Status.PENDING,
        created_at__lt=older_than,
    ).values_list("pk", flat=True)
    return [pk for pk in candidates if _waiting_run_close(environment, pk, stale)]


def _waiting_run_close(environment, run_id: int, stale: Q) -> bool:
    with transaction.atomic():
        # Locked, and checked again: a resume may have set it going meanwhile.
        run = RefreshRun.objects.select_for_update().filter(stale, pk=run_id).first()
        if run is None or run.status != Status.PENDING:
            return False
        left = run.chunks.exclude(status=Status.DONE)
        ranges = [
            Q(pk__gt=after, pk__lte=last) for after, last in left.values_list("cursor", "last_id")
        ]
        waiting = Property.objects.filter(
            environment=environment, valuation_requested_at__isnull=False
        )
        if ranges and waiting.filter(functools.reduce(operator.or_, ranges)).exists():
            return False
        left.update(status=Status.DONE, cursor=F("last_id"))
        run.status, run.finished_at = Status.DONE, timezone.now()
        run.processed = run.total  # none of its properties is left for it to do
        run.cursor = _watermark(run.pk)
        run.save(update_fields=["status", "finished_at", "processed", "cursor"])
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor_label="homes.equity_tick",
            environment=environment,
            obj=run,
            reason=f"refresh closed: none of its {run.total:,} properties "
            "is waiting for a valuation any more (homes.equity_tick revalues those left "
            "waiting past the grace period)",
        )
    log.warning(
        "Refresh %s of environment %s closed: none of its properties is waiting any more.",
        run.pk,
        environment.pk,
    )
    return True


# A worker keeps the estimator of the runs it works on: building one takes seconds, and
# every chunk of a run values with the same recorded sales.
_estimators: OrderedDict[tuple, object] = OrderedDict()


def _run_estimator(environment, run: RefreshRun):
    key = (environment.pk, run.pk, run.created_at)
    if key not in _estimators:
        _estimators[key] = sales_estimator(environment)
        while len(_estimators) > 2:
            _estimators.popitem(last=False)
    return _estimators[key]
