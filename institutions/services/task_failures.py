"""Background tasks that failed for good: recorded for the admin, pruned after 90 days.

Celery's task_failure signal (institutions.signals) calls task_failure_record once a task
has no retry left; a retry is not a failure.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery.utils.saferepr import saferepr
from celery.utils.serialization import UnpickleableExceptionWrapper
from django.db import transaction
from django.utils import timezone

from institutions.models import AuditEntry, Environment, TaskFailure
from institutions.services.audit import audit_record, model_snapshot
from institutions.tenancy import EnvironmentsFailed

RETENTION = timedelta(days=90)
# Bounds of what one entry keeps: the start of a message, the end of a traceback (where
# the error is), the start of the arguments.
MESSAGE_MAX = 2_000
TRACEBACK_MAX = 20_000
ARGUMENTS_MAX = 1_000


def _clip(text: str, limit: int, *, keep_end: bool = False) -> str:
    text = text.replace("\x00", "\ufffd")  # PostgreSQL refuses NUL in text
    if len(text) <= limit:
        return text
    if keep_end:
        return "…" + text[-(limit - 1) :]
    return text[: limit - 1] + "…"


def _exception_type(exc: BaseException) -> str:
    if isinstance(exc, UnpickleableExceptionWrapper):  # Celery's stand-in for it
        module, name = exc.exc_module, exc.exc_cls_name
    else:
        module, name = type(exc).__module__, type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, UnpickleableExceptionWrapper):
        return " ".join(str(arg) for arg in exc.exc_args)
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ fails still gets its entry
        return saferepr(exc, MESSAGE_MAX)


def _traceback(exc: BaseException) -> str:
    if exc.__traceback__ is None:
        return ""
    return "".join(tb.format_exception(type(exc), exc, exc.__traceback__))


def task_arguments_repr(args, kwargs) -> str:
    """The arguments of a task call as an entry keeps them (shortened)."""
    shown_args = saferepr(tuple(args or ()), ARGUMENTS_MAX)
    return f"args={shown_args} kwargs={saferepr(kwargs or {}, ARGUMENTS_MAX)}"


def _as_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def task_failure_record(
    *,
    task_name: str,
    task_id: str,
    exception: BaseException,
    traceback: str = "",
    arguments: str = "",
    retries: int = 0,
    environment_id=None,
    at: datetime | None = None,
) -> list[TaskFailure]:
    """Record one task's final failure: one entry, or one per environment that failed when
    a task visiting every environment raised EnvironmentsFailed.

    `environment_id`: what a tenant task was called with; an id that names no environment
    (the task failed because it was deleted) is recorded without one.
    """
    at = at or timezone.now()
    if isinstance(exception, EnvironmentsFailed) and exception.failed:
        failures = [(pk, exc, _traceback(exc) or traceback) for pk, exc in exception.failed.items()]
    else:
        failures = [(_as_id(environment_id), exception, traceback or _traceback(exception))]
    wanted = {pk for pk, _, _ in failures if pk is not None}
    existing = set(Environment.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    rows = [
        TaskFailure(
            at=at,
            task_name=_clip(task_name, 200),
            task_id=_clip(task_id or "", 255),
            environment_id=pk if pk in existing else None,
            exception_type=_clip(_exception_type(exc), 200),
            message=_clip(_message(exc), MESSAGE_MAX),
            traceback=_clip(text, TRACEBACK_MAX, keep_end=True),
            arguments=_clip(arguments, ARGUMENTS_MAX),
            retries=max(int(retries or 0), 0),
        )
        for pk, exc, text in failures
    ]
    with transaction.atomic():  # a savepoint when called inside a transaction
        return TaskFailure.objects.bulk_create(rows)


def task_failures_delete(*, failures: Iterable[TaskFailure], actor) -> int:
    """Clear handled entries (platform operators), each deletion audited."""
    deleted = 0
    with transaction.atomic():
        for failure in failures:
            audit_record(
                action=AuditEntry.Action.DELETE,
                actor=actor,
                environment=failure.environment,
                obj=failure,
                before=model_snapshot(failure),
                reason="task failure cleared",
            )
            failure.delete()
            deleted += 1
    return deleted


def task_failures_prune(*, now: datetime | None = None) -> int:
    """Delete entries older than RETENTION (a periodic task); returns how many."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = TaskFailure.objects.filter(at__lt=cutoff).delete()
    return deleted
