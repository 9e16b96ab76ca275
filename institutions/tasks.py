"""Platform housekeeping tasks (not tied to one environment)."""

from celery import shared_task


@shared_task(name="institutions.idempotency_prune", ignore_result=True)
def idempotency_prune() -> int:
    """Forget stored API responses past their retention (hourly, from beat)."""
    from institutions.services.idempotency import idempotency_prune as prune

    return prune()


@shared_task(name="institutions.task_failures_prune", ignore_result=True)
def task_failures_prune() -> int:
    """Forget failed-task entries older than 90 days (daily, from beat)."""
    from institutions.services.task_failures import task_failures_prune as prune

    return prune()
