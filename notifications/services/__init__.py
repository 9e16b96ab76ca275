"""Every write of notifications goes through these services."""

from notifications.services.claims import deliveries_claim
from notifications.services.outbox import (
    DeliveryPlan,
    deliveries_dispatch,
    deliveries_enqueue,
    deliveries_retry,
    deliveries_sweep,
)
from notifications.services.preferences import (
    consent_text,
    email_bounce_record,
    engagement_record,
    preference_set,
    profile_update,
    unsubscribe,
)

__all__ = [
    "DeliveryPlan",
    "consent_text",
    "deliveries_claim",
    "deliveries_dispatch",
    "deliveries_enqueue",
    "deliveries_retry",
    "deliveries_sweep",
    "email_bounce_record",
    "engagement_record",
    "preference_set",
    "profile_update",
    "unsubscribe",
]
