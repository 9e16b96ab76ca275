"""Staging data runs from the admin: checked and recorded at once, run by a worker.

A fill of 100,000 members takes minutes, longer than a web request may; so the admin
records a `StagingDataJob` (refused at once if it cannot run) and a worker runs it. The
job shows its state, its progress while it runs (through the cache) and its outcome.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from homes.models import Member
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record
from releases.models import StagingDataJob
from releases.services.common import ReleaseRefused, production_of
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.common import check_can_fill
from releases.staging_data.mock import mock_data_generate, mock_parameters_check

log = logging.getLogger(__name__)

#: A job "running" for longer than this was lost with its worker: another may start.
STALE_AFTER = dt.timedelta(hours=6)
PROGRESS_TTL = 6 * 3600
WHAT = {
    StagingDataJob.Kind.MOCK: "Mock data",
    StagingDataJob.Kind.REFRESH: "The anonymized copy of production",
}


def progress_key(job: StagingDataJob) -> str:
    return f"releases:staging-data-job:{job.pk}:progress"


def job_progress(job: StagingDataJob) -> tuple[str, int, int] | None:
    """(step, done, total) of a running job, when the worker has said."""
    value = cache.get(progress_key(job))
    return tuple(value) if value else None


def _busy(environment: Environment) -> StagingDataJob | None:
    return (
        StagingDataJob._base_manager.filter(
            environment=environment,
            status__in=[StagingDataJob.Status.PENDING, StagingDataJob.Status.RUNNING],
            created_at__gte=timezone.now() - STALE_AFTER,
        )
        .order_by("-created_at")
        .first()
    )


def staging_job_request(
    *, environment: Environment, kind: str, parameters: dict, actor
) -> StagingDataJob:
    """Record a mock generation or an anonymized copy into staging and queue it; refused
    now (ReleaseRefused, nothing recorded) when it could not run."""
    if kind not in StagingDataJob.Kind.values:
        raise ReleaseRefused(f"Unknown staging data run {kind!r}.")
    check_can_fill(environment, actor, WHAT[kind])
    if kind == StagingDataJob.Kind.MOCK:
        parameters = mock_parameters_check(**parameters, latest=environment.institution.today())
    else:
        parameters = {}
        production = production_of(environment)
        if not Member._base_manager.filter(environment=production).exists():
            raise ReleaseRefused(
                "Production has no members yet: there is nothing to copy, and staging is "
                "left as it is."
            )
    busy = _busy(environment)
    if busy is not None:
        raise ReleaseRefused(
            f"{busy.get_kind_display()} is already {busy.get_status_display().lower()} "
            f"(requested {busy.created_at:%Y-%m-%d %H:%M}); wait for it to finish."
        )
    with transaction.atomic():
        job = StagingDataJob._base_manager.create(
            environment=environment, kind=kind, parameters=parameters, requested_by=actor
        )
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            environment=environment,
            obj=job,
            object_repr=f"{job.get_kind_display()} requested",
            changes={"parameters": parameters},
        )
        from releases.tasks import staging_data_run

        transaction.on_commit(lambda: staging_data_run.delay(environment.pk, job.pk))
    return job


def _update(job: StagingDataJob, **fields) -> None:
    StagingDataJob._base_manager.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def staging_job_run(*, environment: Environment, job: StagingDataJob) -> StagingDataJob:
    """Run a recorded job (a worker calls this). Its outcome is recorded on the job; a
    failure leaves staging as it was (each run is one transaction)."""
    if job.environment_id != environment.pk:
        raise ReleaseRefused("This staging data run belongs to another environment.")
    if job.status in (StagingDataJob.Status.DONE, StagingDataJob.Status.FAILED):
        return job  # a redelivered message: the run already happened
    _update(job, status=StagingDataJob.Status.RUNNING, started_at=timezone.now(), error="")
    key = progress_key(job)

    def progress(step: str, done: int, total: int) -> None:
        cache.set(key, (step, done, total), PROGRESS_TTL)

    actor = job.requested_by
    try:
        if job.kind == StagingDataJob.Kind.MOCK:
            options = dict(job.parameters)
            if options.get("today"):
                options["today"] = dt.date.fromisoformat(options["today"])
            mock = mock_data_generate(
                environment=environment, actor=actor, progress=progress, **options
            )
            result = {"summary": mock.summary(), **mock.counts}
        else:
            copy = staging_refresh_from_production(
                environment=environment, actor=actor, progress=progress
            )
            result = {"summary": copy.summary(), **copy.as_dict()}
    except ReleaseRefused as refusal:
        _update(
            job,
            status=StagingDataJob.Status.FAILED,
            error=refusal.message,
            finished_at=timezone.now(),
        )
    except Exception as exc:
        # The exception may quote a production value (a database error names the row):
        # the details go to the worker's log, never into staging.
        log.exception("staging data job %s failed", job.pk)
        _update(
            job,
            status=StagingDataJob.Status.FAILED,
            error=f"The run stopped ({type(exc).__name__}); staging is unchanged. "
            "The worker's log has the details.",
            finished_at=timezone.now(),
        )
    else:
        _update(job, status=StagingDataJob.Status.DONE, result=result, finished_at=timezone.now())
    finally:
        cache.delete(key)
    return job
