"""Appointment messages, decoupled: homes says what to send, a higher app sends it.

homes does not import notifications. notifications registers a messenger in its
AppConfig.ready() that writes the messages to its outbox, inside the transaction that
books or changes the appointment (so a message is never lost, nor sent for a booking
that rolled back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

KINDS = ("confirmation", "update", "cancellation", "reminder")


@dataclass(frozen=True)
class AppointmentMessage:
    """One change of an appointment to tell the member (and, but for reminders, the officer).

    Contexts are plain strings for the templates, in each reader's own time zone. The
    invitation is an iTIP message (METHOD REQUEST or CANCEL) attached as text/calendar.
    """

    environment: object
    appointment_id: int
    kind: str
    sequence: int
    member: object
    member_context: dict
    officer_email: str = ""
    officer_name: str = ""
    officer_context: dict = field(default_factory=dict)
    invitation: str = ""
    method: str = ""  # REQUEST or CANCEL, with the invitation
    reminder: str = ""  # "day" or "hour", for reminders

    @property
    def key(self) -> str:
        """Idempotency key: one message per appointment, kind, sequence and reminder."""
        return f"appointment:{self.appointment_id}:{self.kind}:{self.sequence}:{self.reminder}"


Messenger = Callable[[AppointmentMessage], None]
_messengers: list[Messenger] = []


def register_messenger(messenger: Messenger) -> Messenger:
    if messenger not in _messengers:
        _messengers.append(messenger)
    return messenger


def has_messenger() -> bool:
    return bool(_messengers)


def send(message: AppointmentMessage) -> None:
    """Hand the message to every registered messenger (inside the caller's transaction)."""
    if message.kind not in KINDS:
        raise ValueError(f"Unknown appointment message {message.kind!r}; one of {KINDS}")
    if not _messengers:
        logger.warning("No appointment messenger registered: %s not sent", message.key)
    for messenger in list(_messengers):
        messenger(message)
