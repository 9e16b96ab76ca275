"""What a staging fill does to what staging had already sent out: an appointment booked in
staging was written to the officer's calendar, and the members it replaces take their
appointments with them."""

from __future__ import annotations

import pytest

from homes.models import Appointment, Member
from homes.services import appointments_calendar_retry
from homes.services.calendars import appointments_calendar_sweep
from institutions.tenancy import environment_scope
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.mock import mock_data_generate
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import officer_with_week

pytestmark = pytest.mark.django_db


def _officer(environment, calendar):
    return officer_with_week(
        environment,
        caldav_url=calendar.url,
        caldav_username=calendar.username,
        caldav_password=calendar.password,
    )


def _booked(staging, calendar, capture):
    officer = _officer(staging, calendar)
    tester = MemberFactory(environment=staging, first_name="Stagey", last_name="Tester")
    with capture(execute=True):
        appointment = book(staging, tester, officer, thursday(staging, 10))
    assert len(calendar.our_events()) == 1
    return tester, appointment


def test_staging_refresh__booked_appointment_of_a_replaced_member__leaves_the_officers_calendar(
    tenant, people, calendar_server, django_capture_on_commit_callbacks
):
    """The refresh replaces staging's members, and with them their appointments: the
    officer's calendar no longer shows them (as when a member cancels or is erased)."""
    staging = tenant.staging
    calendar = calendar_server.calendar()
    _booked(staging, calendar, django_capture_on_commit_callbacks)
    MemberFactory(environment=tenant.production)

    with django_capture_on_commit_callbacks(execute=True):
        staging_refresh_from_production(environment=staging, actor=people.it)
    with django_capture_on_commit_callbacks(execute=True), environment_scope(staging):
        appointments_calendar_sweep(environment=staging)

    left = [str(e.get("SUMMARY")) for e in calendar.our_events()]
    assert left == []


def test_staging_refresh__calendar_server_down__refresh_done__removal_retried__then_cleared(
    tenant, people, calendar_server, settings, django_capture_on_commit_callbacks
):
    """A calendar server that is down never holds a refresh up: the cancelled appointment
    stays (with its member, erased) and shows the failure; the removal is retried, and the
    next refresh clears what is left."""
    settings.APPOINTMENTS_CALDAV_MAX_ATTEMPTS = 2
    staging = tenant.staging
    calendar = calendar_server.calendar()
    tester, appointment = _booked(staging, calendar, django_capture_on_commit_callbacks)
    MemberFactory(environment=tenant.production)

    calendar_server.stop()
    with django_capture_on_commit_callbacks(execute=True):
        result = staging_refresh_from_production(environment=staging, actor=people.it)
    assert result.members == 1
    appointment = Appointment._base_manager.get(pk=appointment.pk)
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.caldav_state == Appointment.CalendarSync.FAILED  # shown to staff
    kept = Member._base_manager.get(pk=tester.pk)
    assert kept.erased_at is not None
    assert (kept.first_name, kept.email, kept.external_id) == ("", "", "")

    calendar_server.start()
    assert len(calendar.our_events()) == 1
    with django_capture_on_commit_callbacks(execute=True), environment_scope(staging):
        assert appointments_calendar_retry(environment=staging, appointment_ids=[appointment.pk])
    assert calendar.our_events() == []

    staging_refresh_from_production(environment=staging, actor=people.it)
    assert not Member._base_manager.filter(pk=tester.pk).exists()
    assert not Appointment._base_manager.filter(pk=appointment.pk).exists()


def test_mock_data__booked_appointment_of_a_replaced_member__leaves_the_officers_calendar(
    tenant, people, calendar_server, django_capture_on_commit_callbacks
):
    """Mock data replaces staging's members too: their appointments leave the calendar."""
    staging = tenant.staging
    calendar = calendar_server.calendar()
    _booked(staging, calendar, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        mock_data_generate(
            environment=staging, count=5, seed=1, region="king-county-wa", sales=50, actor=people.it
        )

    assert calendar.our_events() == []
