"""Provider webhooks: django-anymail parses each provider's tracking events (bounces,
complaints, …) at notifications/esp/<provider>/tracking/ on the environment's host, checks
the webhook's secret, and sends them here inside the environment's scope."""

from __future__ import annotations

from institutions.tenancy import current_environment
from notifications.services.feedback import email_feedback_record

#: Metadata set on each message sent through anymail; providers echo it in their events.
DELIVERY_METADATA = "chimney_delivery"


def esp_tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    """anymail's `tracking` signal."""
    environment = current_environment()
    if environment is None:  # the URLs exist on environment hosts only
        return
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    try:
        delivery_id = int(metadata[DELIVERY_METADATA])
    except (KeyError, TypeError, ValueError):
        delivery_id = None
    email_feedback_record(
        environment=environment,
        event_type=event.event_type,
        recipient=event.recipient or "",
        message_id=str(event.message_id or ""),
        delivery_id=delivery_id,
        description=event.description or event.reject_reason or "",
        details=event.mta_response or "",
        provider=esp_name,
    )
