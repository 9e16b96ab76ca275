from __future__ import annotations

from homes.models import Member
from institutions.tenancy import environment_scope
from notifications.models import Delivery
from notifications.services.campaigns import campaign_enqueue_members
from tests.factories import MemberFactory


def members(environment, n: int, **kwargs) -> list[Member]:
    return [MemberFactory(environment=environment, **kwargs) for _ in range(n)]


def run_campaign(capture, environment, campaign: str, people, period="2026-05") -> None:
    """Plan a campaign for these members and send it (eager tasks, after commit)."""
    with capture(execute=True), environment_scope(environment):
        campaign_enqueue_members(
            environment=environment,
            campaign=campaign,
            period=period,
            member_ids=[m.pk for m in people],
        )


def deliveries(environment, **filters) -> list[Delivery]:
    with environment_scope(environment):
        return list(Delivery.objects.filter(**filters).order_by("pk"))


def planned(capture, environment, campaign: str, people, period="2026-05") -> list[int]:
    """Plan a campaign for these members without sending it; the delivery ids."""
    with capture(execute=False), environment_scope(environment):
        campaign_enqueue_members(
            environment=environment,
            campaign=campaign,
            period=period,
            member_ids=[m.pk for m in people],
        )
    return [d.pk for d in deliveries(environment, campaign_key=f"{campaign}:{period}")]


def reclaimed(capture, environment, ids: list[int]) -> tuple[list, list]:
    """A first worker claims these rows; its lease runs out, the sweeper releases them and
    a second worker claims them: (the first claim, the second)."""
    from datetime import timedelta

    from django.utils import timezone

    from notifications.services import deliveries_claim, deliveries_sweep

    with environment_scope(environment):
        slow = deliveries_claim(environment=environment, delivery_ids=ids)
        later = timezone.now() + timedelta(hours=1)
        with capture(execute=False):
            released = deliveries_sweep(environment=environment, now=later)["released"]
        assert released == len(ids)
        fresh = deliveries_claim(environment=environment, delivery_ids=ids)
    assert sorted(d.pk for d in fresh) == sorted(ids)
    return slow, fresh
