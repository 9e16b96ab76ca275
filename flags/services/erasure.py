"""When homes erases a member: their events stay, for aggregates, but no longer name them."""

from __future__ import annotations

from django.db import transaction

from flags.evaluation import snapshot_invalidate
from flags.models import AnalyticsConsent, Event, Flag
from flags.services import event_buffer

#: The second pass runs this long after the buffers' interval (a write in progress).
SECOND_PASS_MARGIN_SECONDS = 30


def events_unlink_members(*, environment, member_ids: list[int]) -> int:
    """Unlink the members' events from them; returns how many events were unlinked."""
    return Event.objects.filter(environment=environment, member_id__in=member_ids).update(
        member=None
    )


def members_erase(*, environment, member_ids: list[int]) -> None:
    """The homes.erasure hook: anonymize events, forget consent and named-member targeting.

    A page view made just before the erasure may still wait in a process's event buffer
    (event_buffer): this process's is written first, and a second pass, once every
    process has written what it held at the erasure, unlinks the rest.
    """
    event_buffer.flush()
    events_unlink_members(environment=environment, member_ids=member_ids)
    if event_buffer.interval() > 0:
        from flags.tasks import events_unlink_members_task

        args = (environment.pk, list(member_ids))
        countdown = event_buffer.interval() + SECOND_PASS_MARGIN_SECONDS
        transaction.on_commit(
            lambda: events_unlink_members_task.apply_async(args, countdown=countdown)
        )
    AnalyticsConsent.objects.filter(environment=environment, member_id__in=member_ids).delete()
    removed, _ = Flag.members.through.objects.filter(
        flag__environment=environment, member_id__in=member_ids
    ).delete()
    if removed:
        snapshot_invalidate(environment.pk)
