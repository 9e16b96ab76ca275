"""When homes erases a member: their events stay, for aggregates, but no longer name them."""

from __future__ import annotations

from flags.evaluation import snapshot_invalidate
from flags.models import AnalyticsConsent, Event, Flag


def members_erase(*, environment, member_ids: list[int]) -> None:
    """The homes.erasure hook: anonymize events, forget consent and named-member targeting."""
    Event.objects.filter(environment=environment, member_id__in=member_ids).update(member=None)
    AnalyticsConsent.objects.filter(environment=environment, member_id__in=member_ids).delete()
    removed, _ = Flag.members.through.objects.filter(
        flag__environment=environment, member_id__in=member_ids
    ).delete()
    if removed:
        snapshot_invalidate(environment.pk)
