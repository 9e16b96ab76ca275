"""Appointment messages from homes: the member's by email and push (per their
preferences), the loan officer's by email; invitations attached as text/calendar with
their iTIP method. Registered with homes.messaging in NotificationsConfig.ready()."""

from __future__ import annotations

from django.db import transaction

from notifications.models import Category, Delivery
from notifications.services.campaigns import appointment_message_send
from notifications.services.outbox import recipient_delivery_enqueue

INVITATION_FILENAME = "invitation.ics"
#: The officer's copy of a message is keyed as the member's (homes.messaging's
#: "appointment:<id>:<kind>:<sequence>:<reminder>") under this prefix instead.
OFFICER_KEY_PREFIX = "appointment-officer:"


def officer_key(appointment_id: int, rest: str = "") -> str:
    """The campaign key (or, with `rest` short, its prefix) of an appointment's officer
    copies: `rest` continues it with "<kind>:<sequence>:"."""
    return f"{OFFICER_KEY_PREFIX}{appointment_id}:{rest}"


def _attachments(message) -> list[dict]:
    if not message.invitation:
        return []
    return [
        {
            "filename": INVITATION_FILENAME,
            "content": message.invitation,
            "mimetype": f"text/calendar; method={message.method}",
        }
    ]


def appointment_officer_message_send(
    *, environment, email: str, name: str, kind: str, key: str, context: dict, attachments=()
) -> Delivery:
    """The loan officer's copy of a booking, change or cancellation (email; idempotent)."""
    return recipient_delivery_enqueue(
        environment=environment,
        campaign_key=key,
        template_key=f"appointment_officer_{kind}",
        category=Category.APPOINTMENTS,
        email=email,
        name=name,
        context={"appointment": context, "attachments": list(attachments)},
    )


def appointment_messenger(message) -> None:
    """Write a homes.messaging.AppointmentMessage to the outbox (in the caller's transaction)."""
    environment = message.environment
    attachments = _attachments(message)
    with transaction.atomic():
        appointment_message_send(
            environment=environment,
            member=message.member,
            kind=message.kind,
            context={**message.member_context, "key": message.key},
            attachments=attachments,
        )
        if message.officer_email and message.kind != "reminder":
            appointment_officer_message_send(
                environment=environment,
                email=message.officer_email,
                name=message.officer_name,
                kind=message.kind,
                key=message.key.replace("appointment:", OFFICER_KEY_PREFIX, 1),
                context=message.officer_context,
                attachments=attachments,
            )
