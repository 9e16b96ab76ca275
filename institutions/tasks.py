"""Platform housekeeping tasks (not tied to one environment)."""

from celery import shared_task


@shared_task(name="institutions.idempotency_prune", ignore_result=True)
def idempotency_prune() -> int:
    """Forget stored API responses past their retention (hourly, from beat)."""
    from institutions.services.idempotency import idempotency_prune as prune

    return prune()
