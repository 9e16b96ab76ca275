"""Erasing a member reaches the loan officer's copies of their appointment messages: outbox
rows with no member attached, whose context and invitation named the member. Real booking,
real outbox, real erasure, the locmem email backend."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from icalendar import Calendar

from homes.models import Appointment, Member
from homes.services import appointment_reschedule, appointment_set_status, member_erase
from homes.services.calendars import ERASED_MEMBER
from institutions.tenancy import environment_scope
from notifications.models import Delivery
from notifications.services.erasure import ERASED_REASON
from notifications.services.outbox import deliveries_retry, deliveries_sweep
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import officer_with_week
from tests.notifications.helpers import deliveries

pytestmark = pytest.mark.django_db

OFFICER = "sam@lender.test"
PERSONAL = ("Ada", "Park", "ada.park", "206-555-0100", "deed of trust", "Chicago")


def _officer_copies(env, template_key: str) -> list[Delivery]:
    return deliveries(env, member__isnull=True, template_key=template_key)


def _stored(delivery: Delivery) -> str:
    """Everything the outbox row keeps that a message could be rebuilt from."""
    return json.dumps(
        [
            delivery.context,
            delivery.recipient_name,
            delivery.recipient_email,
            delivery.reason,
            delivery.last_error,
        ]
    )


def test_member_erase__officer_copies__scrubbed_and_unsent_suppressed__erasure_cancel_sent(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    officer = officer_with_week(env, name="Sam Rivera", email=OFFICER)
    member = MemberFactory(
        environment=env, first_name="Ada", last_name="Park", email="ada.park@members.test"
    )
    # Two bookings whose officer copies went out and name the member.
    with django_capture_on_commit_callbacks(execute=True):
        upcoming = book(
            env,
            member,
            officer,
            thursday(env, 10),
            note="Call me on 206-555-0100",
            time_zone="America/Chicago",
        )
        kept = book(env, member, officer, thursday(env, 14), note="Bring the deed of trust")
    # The second one took place: it stays, completed, for the officer's counts.
    with environment_scope(env):
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=7)
        Appointment.objects.filter(pk=kept.pk).update(
            start=start, end=start + dt.timedelta(minutes=30)
        )
        appointment_set_status(
            environment=env,
            appointment=Appointment.objects.get(pk=kept.pk),
            status=Appointment.Status.COMPLETED,
        )
        # Moved, but the officer's copy of the move is not sent yet when the erasure comes.
        appointment_reschedule(environment=env, appointment=upcoming, start=thursday(env, 15))
    sent = _officer_copies(env, "appointment_officer_confirmation")
    assert [d.state for d in sent] == [Delivery.State.SENT] * 2
    assert "Ada Park" in _stored(sent[0])  # what there is to erase
    (unsent,) = _officer_copies(env, "appointment_officer_update")
    assert unsent.state == Delivery.State.PENDING
    assert "206-555-0100" in _stored(unsent)

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        member_erase(environment=env, member=Member.objects.get(pk=member.pk))
        deliveries_sweep(environment=env)  # nothing left that would still go out

    # The erasure's own cancellation reached the officer, naming nobody, and reads.
    (message,) = mail.outbox
    assert message.to == [OFFICER]
    assert message.subject.startswith(f"Cancelled: {ERASED_MEMBER}, ")
    assert f"The conversation with {ERASED_MEMBER} on " in message.body
    (part,) = message.attachments
    assert (part.get_filename(), part.get_content_type()) == ("invitation.ics", "text/calendar")
    assert part.get_param("method") == "CANCEL"
    content = part.get_payload(decode=True).decode()
    (event,) = Calendar.from_ical(content).walk("VEVENT")
    assert (str(event["UID"]), event["STATUS"]) == (upcoming.uid, "CANCELLED")
    assert "ATTENDEE" not in event
    (html, _) = message.alternatives[0]
    for personal in PERSONAL:
        assert personal not in " ".join([message.subject, message.body, html, content])
    (cancellation,) = _officer_copies(env, "appointment_officer_cancellation")
    assert cancellation.state == Delivery.State.SENT

    # The copies written before the erasure keep their state for the counts, nothing else.
    assert [d.state for d in _officer_copies(env, "appointment_officer_confirmation")] == [
        Delivery.State.SENT
    ] * 2
    (unsent,) = _officer_copies(env, "appointment_officer_update")
    assert (unsent.state, unsent.reason) == (Delivery.State.SUPPRESSED, ERASED_REASON)
    for copy in [*sent, unsent]:
        copy.refresh_from_db()
        assert copy.context == {}
    # No outbox row of the environment keeps the member, in its context or its invitations.
    stored = [_stored(d) for d in deliveries(env)]
    for personal in PERSONAL:
        assert not [row for row in stored if personal in row], personal


def test_member_erase__dead_officer_copy__suppressed__a_staff_retry_sends_nothing(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    officer = officer_with_week(env, name="Sam Rivera", email=OFFICER)
    member = MemberFactory(environment=env, first_name="Ada", email="ada.park@members.test")
    book(env, member, officer, thursday(env, 10), note="Call me on 206-555-0100")
    (copy,) = _officer_copies(env, "appointment_officer_confirmation")
    with environment_scope(env):  # the officer's server refused it until the attempts ran out
        Delivery.objects.filter(pk=copy.pk).update(
            state=Delivery.State.DEAD, reason="gave up after 5 attempts", last_error="451"
        )
        member_erase(environment=env, member=Member.objects.get(pk=member.pk))
    copy.refresh_from_db()
    assert (copy.state, copy.reason, copy.context) == (
        Delivery.State.SUPPRESSED,
        ERASED_REASON,
        {},
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        assert deliveries_retry(environment=env, delivery_ids=[copy.pk]) == 0
    assert not mail.outbox
