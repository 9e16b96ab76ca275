"""Beat-driven work: rollouts, destination forwarding, daily exports. Thin: ids in."""

from __future__ import annotations

from celery import shared_task
from django_scopes import scopes_disabled

from flags.models import Destination, Rollout
from institutions.tenancy import MAIL_RETRY, tenant_task


@shared_task(name="flags.rollouts_tick", acks_late=True)
def rollouts_tick() -> int:
    """Fan out: one task per running rollout."""
    with scopes_disabled():
        running = list(
            Rollout.objects.filter(status=Rollout.Status.RUNNING).values_list(
                "environment_id", "pk"
            )
        )
    for environment_id, rollout_id in running:
        rollout_advance_task.delay(environment_id, rollout_id)
    return len(running)


@tenant_task(name="flags.rollout_advance", acks_late=True, max_retries=3)
def rollout_advance_task(self, environment, rollout_id: int) -> str:
    from flags.services.rollouts import rollout_advance

    rollout = Rollout.objects.select_related("flag").get(pk=rollout_id)
    return rollout_advance(environment=environment, rollout=rollout)


@tenant_task(
    name="flags.rollout_alert",
    **MAIL_RETRY,
    max_retries=30,  # hours of outage, tried again at most ten minutes apart
    ignore_result=True,
)
def rollout_alert_task(self, environment, rollout_id: int) -> str:
    """Email staff that a rollout failed the oracle and killed its flag, once; a mail
    server that is down is retried with backoff, each failed try recorded on the rollout."""
    from flags.services.rollouts import rollout_alert_failed, rollout_alert_send

    rollout = Rollout.objects.select_related("flag").get(pk=rollout_id)
    try:
        return rollout_alert_send(environment=environment, rollout=rollout)
    except OSError as error:
        final = self.request.retries >= self.max_retries
        rollout_alert_failed(environment=environment, rollout=rollout, error=error, final=final)
        raise


@shared_task(name="flags.destinations_tick", acks_late=True)
def destinations_tick() -> int:
    with scopes_disabled():
        environments = sorted(
            set(
                Destination.objects.filter(enabled=True, kind=Destination.Kind.WEBHOOK)
                .exclude(state=Destination.State.DISABLED)
                .values_list("environment_id", flat=True)
            )
        )
    for environment_id in environments:
        destinations_forward_task.delay(environment_id)
    return len(environments)


@tenant_task(
    name="flags.destinations_forward",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def destinations_forward_task(self, environment) -> dict:
    from flags.services.destinations import destinations_forward

    return destinations_forward(environment=environment)


@shared_task(name="flags.warehouse_tick", acks_late=True)
def warehouse_tick() -> int:
    with scopes_disabled():
        environments = sorted(
            set(
                Destination.objects.filter(
                    enabled=True,
                    kind__in=[Destination.Kind.WAREHOUSE, Destination.Kind.ANALYTICS],
                ).values_list("environment_id", flat=True)
            )
        )
    for environment_id in environments:
        exports_task.delay(environment_id)
    return len(environments)


@tenant_task(name="flags.exports", acks_late=True)
def exports_task(self, environment) -> dict:
    """Today's partition so far, yesterday's final one and any day with late events
    (rewritten idempotently). No retries of its own: a day that cannot be written marks
    its destination failing and is due again at the next hourly run."""
    from flags.services.exports import exports_run

    return exports_run(environment=environment)


@tenant_task(name="flags.events_unlink_members", acks_late=True, max_retries=3)
def events_unlink_members_task(self, environment, member_ids: list[int]) -> int:
    """Erasure's second pass: page views buffered in other processes at the erasure
    (flags.services.event_buffer) were written after its first pass named the members."""
    from flags.services.erasure import events_unlink_members

    return events_unlink_members(environment=environment, member_ids=member_ids)
