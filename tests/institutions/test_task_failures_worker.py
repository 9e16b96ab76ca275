"""A task that fails for good leaves an entry for the admin, written by a real worker.

Eager tasks (the rest of the suite) raise into their caller and never send Celery's
task_failure signal, so these tests run a worker process on Redis.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from django.db import connection

from institutions.models import TaskFailure
from tests.celery_worker import Worker, wait_until
from tests.services import require_postgres, require_redis


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def worker(transactional_db):
    w = Worker(
        require_redis(),
        queue=f"test-{uuid.uuid4().hex}",
        extra_env={
            "DJANGO_SETTINGS_MODULE": "tests.institutions.worker_settings",
            # A mail server that is down: nothing listens there.
            "EMAIL_URL": f"smtp://127.0.0.1:{_unused_port()}",
        },
    ).start()
    yield w
    w.stop()


def _failed(result):
    result.get(timeout=60, propagate=False)
    assert result.state == "FAILURE"
    return result.result


def _entries(count: int, **filters) -> list[TaskFailure]:
    wait_until(lambda: TaskFailure.objects.filter(**filters).count() >= count)
    return list(TaskFailure.objects.filter(**filters).order_by("pk"))


@pytest.mark.redis
@pytest.mark.slow
def test_task_failure__tenant_task_raises__one_entry_with_name_exception_and_environment(
    worker, tenant
):
    env = tenant.production
    result = worker.send_task("tests.failures.tenant_raises", args=[env.pk, "bad row 42"])
    assert isinstance(_failed(result), ValueError), worker.output()
    (entry,) = _entries(1)
    assert entry.task_name == "tests.failures.tenant_raises"
    assert entry.task_id == result.id
    assert entry.environment == env
    assert entry.exception_type == "ValueError"
    assert entry.message == "bad row 42"
    assert "raise ValueError(message)" in entry.traceback
    assert f"{env.pk}, 'bad row 42'" in entry.arguments
    assert entry.retries == 0


@pytest.mark.redis
@pytest.mark.slow
def test_task_failure__mail_server_down__retries_leave_nothing__final_failure_one_entry(
    worker, tenant
):
    env = tenant.staging
    result = worker.send_task("tests.failures.mail_down", args=[env.pk, "ada@example.test"])
    assert isinstance(_failed(result), ConnectionRefusedError), worker.output()
    (entry,) = _entries(1)
    assert entry.task_name == "tests.failures.mail_down"
    assert entry.environment == env
    assert entry.exception_type == "ConnectionRefusedError"
    assert entry.retries == 2  # max_retries: two retries, then it gave up
    assert worker.output().count("Retry in") == 2
    assert TaskFailure.objects.count() == 1


@pytest.mark.redis
@pytest.mark.slow
def test_task_failure__beat_task_environments_failed__one_entry_per_failed_environment(
    worker, tenant, other_tenant
):
    broken = [tenant.staging, other_tenant.production]
    result = worker.send_task(
        "tests.failures.visit_every_environment", args=[[e.pk for e in broken]]
    )
    _failed(result)
    entries = _entries(2)
    assert len(entries) == 2
    assert {e.environment for e in entries} == set(broken)
    for entry in entries:
        assert entry.task_name == "tests.failures.visit_every_environment"
        assert entry.task_id == result.id
        assert entry.exception_type == "LookupError"
        assert entry.message == f"no settings row in environment {entry.environment_id}"
        assert "raise LookupError" in entry.traceback


@pytest.mark.redis
@pytest.mark.slow
def test_task_failure__recorder_cannot_write__task_fails_as_before_and_worker_goes_on(
    worker, tenant
):
    env = tenant.production
    table = TaskFailure._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        result = worker.send_task("tests.failures.tenant_raises", args=[env.pk, "first"])
        failure = _failed(result)
        # The task's own failure is stored as ever, and the recorder's is logged with it.
        assert isinstance(failure, ValueError)
        assert str(failure) == "first"
        logged = f"Could not record the failure of task tests.failures.tenant_raises[{result.id}]"
        wait_until(lambda: logged in worker.output())
        assert "Signal handler" not in worker.output()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
    # The same worker process records the next failure.
    assert worker.send_task("chimney.ping", args=["up"]).get(timeout=60) == "up"
    later = worker.send_task("tests.failures.tenant_raises", args=[env.pk, "second"])
    _failed(later)
    (entry,) = _entries(1)
    assert (entry.task_id, entry.message) == (later.id, "second")


@pytest.fixture
def on_postgres():
    require_postgres()  # ends a PostgreSQL backend: skipped before a worker starts


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.postgres
def test_task_failure__database_connection_lost__recorded_on_a_fresh_connection(
    on_postgres, worker, tenant
):
    env = tenant.production
    result = worker.send_task("tests.failures.database_lost", args=[env.pk])
    _failed(result)
    (entry,) = _entries(1)
    assert entry.task_name == "tests.failures.database_lost"
    assert entry.environment == env
    assert entry.exception_type == "django.db.utils.OperationalError"
