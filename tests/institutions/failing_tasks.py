"""Tasks that fail on purpose, for the tests of failed-task records.

A test worker loads them through tests.institutions.worker_settings (CELERY_IMPORTS).
"""

from __future__ import annotations

from celery import shared_task
from django.core.mail import send_mail
from django.db import connection

from institutions.tenancy import MAIL_RETRY, for_each_environment, tenant_task


@tenant_task(name="tests.failures.tenant_raises", acks_late=True)
def tenant_raises(self, environment, message: str) -> None:
    raise ValueError(message)


# The project's mail retry policy, shortened so that a test sees every retry.
@tenant_task(
    name="tests.failures.mail_down", **{**MAIL_RETRY, "max_retries": 2, "retry_backoff_max": 1}
)
def mail_down(self, environment, address: str) -> None:
    """Send one email; the worker's EMAIL_URL names a port where no server listens."""
    send_mail("Your home value", "Hello", None, [address])


@shared_task(name="tests.failures.visit_every_environment", acks_late=True)
def visit_every_environment(fail_in: list[int]) -> dict:
    """A beat-like task over every environment; those in `fail_in` raise."""

    def visit(environment):
        if environment.pk in fail_in:
            raise LookupError(f"no settings row in environment {environment.pk}")
        return environment.pk

    return for_each_environment(visit, atomic=True)


@tenant_task(name="tests.failures.database_lost", acks_late=True)
def database_lost(self, environment) -> None:
    """The database server ends this worker's connection (a restart, a failover)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
