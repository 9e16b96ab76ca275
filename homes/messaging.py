"""Member messages, decoupled: homes says what to send, a higher app sends it.

homes does not import notifications. notifications registers, in its AppConfig.ready():
- a messenger that writes appointment messages to its outbox, inside the transaction that
  books or changes the appointment (so a message is never lost, nor sent for a booking
  that rolled back);
- an account mailer that sends an account email (the sign-in link) at once, the way every
  email of the environment goes (staging to its sink unless the address is allowlisted),
  and records a permanent refusal of the address as a bounce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.mail import EmailMessage

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


class MailRefused(Exception):
    """The mail server refused an account email for good (5xx): sending again cannot help.
    The mailer recorded it (the member's address bounced)."""


AccountMailer = Callable[..., None]
_account_mailer: AccountMailer | None = None


def register_account_mailer(mailer: AccountMailer) -> AccountMailer:
    """The mailer is called as mailer(environment=, member=, message=)."""
    global _account_mailer
    _account_mailer = mailer
    return mailer


def account_email_send(*, environment, member, message: EmailMessage) -> None:
    """Send an account email to a member now, through the registered mailer (without one,
    the default email backend). Raises MailRefused for a permanent refusal; any other
    error (an OSError for a server down or answering 4xx) is transient."""
    if _account_mailer is None:
        logger.warning("No account mailer registered: sent with the default email backend")
        message.send()
        return
    _account_mailer(environment=environment, member=member, message=message)
