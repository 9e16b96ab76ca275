"""Run as a process: send deliveries over SMTP and die by SIGKILL at a chosen point.

    python -m tests.notifications.kill_point POINT ENVIRONMENT_ID DELIVERY_ID...

POINT is where the process kills itself, counted on the SMTP connection:
- ``before-dot``: the message's data is written, its final "." is not;
- ``after-dot``: the "." is written, the database transaction is not yet committed;
- ``at-reply``: reading the server's answer to the "." (everything is committed).
The database, the SMTP server and the home data come from the environment, as a worker's.
"""

from __future__ import annotations

import os
import signal
import smtplib
import sys

import django

END_OF_DATA = b".\r\n"


def main(point: str, environment_id: str, *delivery_ids: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings_test")
    django.setup()
    from institutions.models import Environment
    from institutions.tenancy import environment_scope
    from notifications.services.sending import deliveries_send

    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    send, getreply = smtplib.SMTP.send, smtplib.SMTP.getreply
    dot_sent = False

    def send_then_maybe_die(self, data):
        nonlocal dot_sent
        if data == END_OF_DATA and point == "before-dot":
            die()
        send(self, data)
        if data == END_OF_DATA:
            dot_sent = True
            if point == "after-dot":
                die()

    def getreply_or_die(self):
        if dot_sent and point == "at-reply":
            die()
        return getreply(self)

    smtplib.SMTP.send = send_then_maybe_die
    smtplib.SMTP.getreply = getreply_or_die
    environment = Environment.objects.get(pk=environment_id)
    with environment_scope(environment):
        deliveries_send(environment=environment, delivery_ids=[int(i) for i in delivery_ids])
    sys.exit("the kill point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:])
