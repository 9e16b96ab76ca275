"""When homes erases a member: deliveries stay (counts, delivery rates) without content."""

from __future__ import annotations

from notifications.models import (
    ConsentRecord,
    Delivery,
    JourneyProgress,
    NotificationProfile,
    Preference,
    PushSubscription,
)

ERASED_REASON = "The member's data was erased."


def members_erase(*, environment, member_ids: list[int]) -> None:
    """The homes.erasure hook: nothing more is sent; what was sent keeps no personal data."""
    deliveries = Delivery.objects.filter(environment=environment, member_id__in=member_ids)
    deliveries.filter(
        state__in=[Delivery.State.PENDING, Delivery.State.SENDING, Delivery.State.FAILED]
    ).update(state=Delivery.State.SUPPRESSED, reason=ERASED_REASON)
    deliveries.update(context={}, last_error="", provider_message_id="")
    for model in (PushSubscription, Preference, NotificationProfile, JourneyProgress):
        model.objects.filter(environment=environment, member_id__in=member_ids).delete()
    # Consent evidence is kept (what was agreed, when, how), without the client address.
    ConsentRecord.objects.filter(environment=environment, member_id__in=member_ids).update(
        client=""
    )
