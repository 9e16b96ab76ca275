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
