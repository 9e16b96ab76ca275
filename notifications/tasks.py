"""Notification tasks: thin, ids in; each owns its retry policy.

Every task acks late and is rejected (requeued) when its worker dies, so a message is
never lost; the outbox's atomic claim makes a redelivered send task a no-op for what was
already sent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from celery import shared_task
from django.db import OperationalError

from institutions.tenancy import for_each_environment, tenant_task

_RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
    "ignore_result": True,
}


@tenant_task(name="notifications.send_deliveries", **_RELIABLE)
def send_deliveries(self, environment, delivery_ids: list[int]) -> dict:
    """Send a batch of deliveries over one connection per route."""
    from notifications.services.outbox import deliveries_dispatch
    from notifications.services.sending import deliveries_send

    result = deliveries_send(environment=environment, delivery_ids=delivery_ids)
    # Transient failures: each row is pending again with its backoff; queue them for then,
    # rounded up to the second (a task that ran before a row's time would claim nothing,
    # and the row would wait for the sweeper).
    by_second: dict[int, list[int]] = {}
    for pk, when in result.retry.items():
        by_second.setdefault(math.ceil(when.timestamp()), []).append(pk)
    for second, ids in by_second.items():
        eta = datetime.fromtimestamp(second, UTC)
        deliveries_dispatch(environment=environment, delivery_ids=ids, eta=eta)
    return {
        "sent": result.sent,
        "failed": result.failed,
        "retry": len(result.retry),
        "suppressed": result.suppressed,
    }


@tenant_task(name="notifications.campaign_chunk", **_RELIABLE)
def campaign_chunk(self, environment, campaign: str, period: str, member_ids: list[int]) -> int:
    """Plan one chunk of a campaign's members (bulk reads, bulk writes) and dispatch it."""
    from notifications.services.campaigns import campaign_enqueue_members

    return campaign_enqueue_members(
        environment=environment, campaign=campaign, period=period, member_ids=member_ids
    )


@tenant_task(name="notifications.campaign_run", **_RELIABLE)
def campaign_run(self, environment, campaign: str, period: str) -> int:
    """Fan a campaign out over its members in chunks."""
    from notifications.services.campaigns import campaign_start

    return campaign_start(environment=environment, campaign=campaign, period=period)


@shared_task(name="notifications.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    """Beat, every minute: re-dispatch pending rows nobody queued and stale sending rows."""
    from notifications.services.outbox import deliveries_sweep

    return for_each_environment(lambda env: deliveries_sweep(environment=env), atomic=True)


@shared_task(name="notifications.daily", acks_late=True, ignore_result=True)
def daily() -> dict:
    """Beat, hourly: start what is due (monthly digests on the 1st, or started or resumed
    in the next days if the 1st missed them or left them unfinished; welcome series,
    alerts)."""
    from notifications.services.campaigns import campaigns_due

    return for_each_environment(lambda env: campaigns_due(environment=env), atomic=True)


@shared_task(name="notifications.journeys", acks_late=True, ignore_result=True)
def journeys() -> dict:
    """Beat, every five minutes: advance every member's journey progress that is due."""
    from notifications.services.journeys import journeys_advance

    return for_each_environment(lambda env: journeys_advance(environment=env), atomic=True)
