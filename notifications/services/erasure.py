"""When homes erases a member: deliveries stay (counts, delivery rates) without content.

That covers the loan officer's copies of the member's appointment messages too: they have no
member attached, but their context names the member (name, email, note) and their
invitation lists the member as attendee.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import Q

from homes.models import Appointment
from homes.services.erasure import CANCELLED_BY_ERASURE
from notifications.models import (
    ConsentRecord,
    Delivery,
    JourneyProgress,
    NotificationProfile,
    Preference,
    PushSubscription,
)
from notifications.services.appointments import officer_key

ERASED_REASON = "The member's data was erased."
#: What was never sent is not sent now (dead and failed rows too: a staff retry would
#: send them again, emptied).
UNSENT = (
    Delivery.State.PENDING,
    Delivery.State.SENDING,
    Delivery.State.FAILED,
    Delivery.State.DEAD,
)


def members_erase(*, environment, member_ids: list[int]) -> None:
    """The homes.erasure hook: nothing more is sent; what was sent keeps no personal data."""
    deliveries = Delivery.objects.filter(environment=environment, member_id__in=member_ids)
    deliveries.filter(
        state__in=[Delivery.State.PENDING, Delivery.State.SENDING, Delivery.State.FAILED]
    ).update(state=Delivery.State.SUPPRESSED, reason=ERASED_REASON)
    deliveries.update(context={}, last_error="", provider_message_id="")
    _officer_copies_erase(environment, member_ids)
    for model in (PushSubscription, Preference, NotificationProfile, JourneyProgress):
        model.objects.filter(environment=environment, member_id__in=member_ids).delete()
    # Consent evidence is kept (what was agreed, when, how), without the client address.
    ConsentRecord.objects.filter(environment=environment, member_id__in=member_ids).update(
        client=""
    )


def _officer_copies_erase(environment, member_ids: list[int]) -> None:
    """The officer's copies of the members' appointment messages keep their state and times
    (the officers' counts), not the member: their context and invitation go.

    Those not sent yet are suppressed rather than sent emptied or rewritten: each was written
    for a booking as it stood before the erasure, which has since cancelled the upcoming
    ones (and the officer's calendar is rewritten without the member by the calendar sync),
    so what they would announce no longer holds.

    Spared: the copy of the cancellation the erasure itself just wrote (run before this
    hook, once the member row was emptied, so naming nobody), still to be sent: it is what
    tells the officer the time is free.
    """
    appointments = list(
        Appointment.objects.filter(environment=environment, member_id__in=member_ids).values_list(
            "pk", "status", "cancelled_by", "sequence"
        )
    )
    if not appointments:
        return
    copies = Delivery.objects.filter(environment=environment, member__isnull=True).filter(
        reduce(or_, (Q(campaign_key__startswith=officer_key(pk)) for pk, *_ in appointments))
    )
    erasure_cancellations = [
        officer_key(pk, f"cancellation:{sequence}:")
        for pk, status, cancelled_by, sequence in appointments
        if status == Appointment.Status.CANCELLED and cancelled_by == CANCELLED_BY_ERASURE
    ]
    copies = copies.exclude(campaign_key__in=erasure_cancellations)
    copies.filter(state__in=UNSENT).update(state=Delivery.State.SUPPRESSED, reason=ERASED_REASON)
    copies.update(context={}, last_error="", provider_message_id="")
