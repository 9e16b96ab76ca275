"""Stand-ins for outside email services (not our code): anymail's test backend answering
like a provider does for some addresses, and a local sink that fails for some."""

from __future__ import annotations

from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class ProviderBackend(AnymailTestBackend):
    """down@… : the API answers 503; refused@… : rejected; queued@… : queued; else sent."""

    def post_to_esp(self, payload, message):
        (address,) = payload.recipient_emails
        if address.startswith("down@"):
            message.anymail_test_response = AnymailAPIError(
                "Postmark API response 503 (Service Unavailable)", status_code=None
            )
        elif address.startswith(("refused@", "queued@")):
            status = "rejected" if address.startswith("refused@") else "queued"
            message.anymail_test_response = {
                "recipient_status": {address: AnymailRecipientStatus(f"esp-{address}", status)}
            }
        return super().post_to_esp(payload, message)


class Halt(BaseException):
    """What a worker being stopped looks like from inside the batch."""


class LocalSinkBackend(LocmemBackend):
    """explode@… : the write fails; halt@… : the process stops in the middle of a batch."""

    def send_messages(self, messages):
        for message in messages:
            if message.to[0].startswith("explode@"):
                raise RuntimeError("disk full")
            if message.to[0].startswith("halt@"):
                raise Halt
        return super().send_messages(messages)
