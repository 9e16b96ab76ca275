"""Account email from homes (the sign-in link), sent at once rather than from the outbox,
which would keep the link: routed like every email of the environment (staging to its
sink unless the address is allowlisted), and a permanent refusal recorded as the member's
bounce. Registered with homes.messaging in NotificationsConfig.ready()."""

from __future__ import annotations

import contextlib

from homes.messaging import MailRefused
from notifications.channels import email as email_channel
from notifications.selectors import notification_settings
from notifications.services.preferences import email_bounce_record


def account_mailer(*, environment, member, message) -> None:
    """Send an account email to the member now. A 5xx for the address or the message is
    recorded as a bounce and raises MailRefused; anything else raises for a retry."""
    settings_row = notification_settings(environment)
    test_addresses = settings_row.allowlist
    route_name = email_channel.route(environment, member.email, test_addresses)
    if route_name == email_channel.SINK:
        message.extra_headers["X-Chimney-Staging-Sink"] = "1"
    connection = email_channel.open_connection(route_name)
    try:
        connection.send_messages([message])
    except Exception as error:
        refusal = email_channel.permanent_refusal(error)
        if not refusal:
            raise
        email_bounce_record(
            environment=environment, member_id=member.pk, address=member.email, reason=refusal
        )
        raise MailRefused(refusal) from error
    finally:
        with contextlib.suppress(OSError):  # a broken connection may fail to close
            connection.close()
