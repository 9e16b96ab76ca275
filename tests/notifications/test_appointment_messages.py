"""Appointment invitations through the outbox and a real local SMTP server: the member and
the loan officer (who is not a member) each get a text/calendar part with its iTIP method;
the officer's copy is idempotent, retried, and goes to the sink in staging."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from icalendar import Calendar

from institutions.tenancy import environment_scope
from notifications.models import Delivery, NotificationProfile, NotificationSettings
from notifications.services import preference_set
from notifications.services.appointments import appointment_officer_message_send
from notifications.services.sending import deliveries_send
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import officer_with_week
from tests.notifications.helpers import deliveries

pytestmark = pytest.mark.django_db


def _calendar_part(message):
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return part


def _event(part):
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_booking_moving_cancelling__member_and_officer_get_text_calendar_with_the_method(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    officer = officer_with_week(env, name="Sam Rivera", email="sam@lender.test")
    member = MemberFactory(environment=env, email="ada@example.test", first_name="Ada")
    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, member, officer, thursday(env, 10, 30), note="Roof")

    (to_member,) = smtp_settings.to("ada@example.test")
    (to_officer,) = smtp_settings.to("sam@lender.test")
    for message in (to_member, to_officer):
        part = _calendar_part(message)
        assert part.get_content_type() == "text/calendar"
        assert part.get_param("method") == "REQUEST"
        assert part.get_filename() == "invitation.ics"
        calendar, event = _event(part)
        assert calendar["METHOD"] == "REQUEST"
        assert (str(event["UID"]), event["SEQUENCE"]) == (appointment.uid, 0)
    assert "Hello Ada" in to_member.get_body(("plain",)).get_content()
    officer_text = to_officer.get_body(("plain",)).get_content()
    assert "Hello Sam Rivera" in officer_text
    assert "Their note: Roof" in officer_text
    assert f"/admin/homes/appointment/{appointment.pk}/change/" in officer_text
    # The officer is not a member: no unsubscribe link, no tracking, no member preferences.
    assert to_officer["List-Unsubscribe"] is None
    assert "/notifications/o/" not in to_officer.get_body(("html",)).get_content()
    assert "Choose what we send you" not in officer_text
    assert to_member["List-Unsubscribe"] is not None

    from homes.services import appointment_cancel, appointment_reschedule

    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        moved = appointment_reschedule(
            environment=env, appointment=appointment, start=thursday(env, 14)
        )
        appointment_cancel(environment=env, appointment=moved)
    for address in ("ada@example.test", "sam@lender.test"):
        _, update, cancel = smtp_settings.to(address)
        part = _calendar_part(update)
        assert part.get_param("method") == "REQUEST"
        assert _event(part)[1]["SEQUENCE"] == 1
        part = _calendar_part(cancel)
        assert part.get_param("method") == "CANCEL"
        calendar, event = _event(part)
        assert (calendar["METHOD"], str(event["UID"]), event["SEQUENCE"]) == (
            "CANCEL",
            appointment.uid,
            2,
        )
    assert {d.state for d in deliveries(env)} == {Delivery.State.SENT}


def test_staging__officer_invitation_goes_to_the_sink_unless_allowlisted(
    tenant, smtp_settings, settings, tmp_path, django_capture_on_commit_callbacks
):
    env = tenant.staging
    settings.NOTIFICATIONS_STAGING_EMAIL_URL = f"filemail:///{tmp_path}"
    officer = officer_with_week(env, email="sam@lender.test")
    member = MemberFactory(environment=env, email="tester@example.test")
    with environment_scope(env):
        NotificationSettings.objects.create(environment=env, test_addresses=[member.email])
    with django_capture_on_commit_callbacks(execute=True):
        book(env, member, officer, thursday(env, 10))
    assert [rcpt for rcpt, _ in smtp_settings.messages] == [["tester@example.test"]]
    sunk = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "sam@lender.test" in sunk
    assert re.search(r'Content-Type: text/calendar;.*method="?REQUEST', sunk)
    (officer_row,) = deliveries(env, member__isnull=True)
    assert (officer_row.state, officer_row.sink) == (Delivery.State.SENT, "sink")


def test_officer_message__idempotent__transient_failure_retried__bounce_fails_visibly(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    smtp_settings.handler.transient.add("busy@lender.test")
    context = {"when": "Thursday 10:30", "member_name": "Ada Park"}
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        kwargs = {"environment": env, "kind": "confirmation", "context": context}
        first = appointment_officer_message_send(
            email="busy@lender.test", name="Sam", key="appointment-officer:1:x", **kwargs
        )
        again = appointment_officer_message_send(
            email="Busy@Lender.test", name="Sam", key="appointment-officer:1:x", **kwargs
        )
        bounced = appointment_officer_message_send(
            email="bounce-officer@lender.test", name="Lee", key="appointment-officer:2:x", **kwargs
        )
    assert first.pk == again.pk
    (row,) = deliveries(env, recipient_email="busy@lender.test")
    assert (row.state, row.attempts) == (Delivery.State.PENDING, 1)
    assert "451" in row.last_error
    assert row.scheduled_at > row.created_at  # backoff

    smtp_settings.handler.transient.clear()
    with environment_scope(env):
        Delivery.objects.filter(pk=row.pk).update(scheduled_at=row.created_at)
        deliveries_send(environment=env, delivery_ids=[row.pk])
    (row,) = deliveries(env, recipient_email="busy@lender.test")
    assert row.state == Delivery.State.SENT
    assert len(smtp_settings.to("busy@lender.test")) == 1

    (bounced,) = deliveries(env, pk=bounced.pk)
    assert bounced.state == Delivery.State.FAILED
    assert bounced.reason.startswith("bounced: 550")
    with environment_scope(env):
        assert not NotificationProfile.objects.exists()  # officers have no member profile


def test_reminder__follows_the_members_channel_preferences(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    from homes.services import appointments_remind

    env = tenant.production
    officer = officer_with_week(env)
    member = MemberFactory(environment=env)
    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, member, officer, thursday(env, 10))
    with environment_scope(env):
        preference_set(
            environment=env,
            member=member,
            category="appointments",
            channel="email",
            enabled=False,
            method="preferences",
        )
        with django_capture_on_commit_callbacks(execute=True):
            appointments_remind(environment=env, now=appointment.start - dt.timedelta(minutes=50))
    (reminder,) = deliveries(env, template_key="appointment_reminder")
    assert reminder.state == Delivery.State.SUPPRESSED
    assert reminder.reason == "member opted out of appointments by email"
    assert all("Reminder" not in m["Subject"] for m in smtp_settings.to(member.email))
