"""Appointments in the admin: officers with availability and an encrypted calendar login,
status actions, calendar retries, and the week calendar of the officers' appointments."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse

from homes.models import Appointment, LoanOfficer, OfficerAvailability
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import MemberFactory, staff_user
from tests.homes.appointment_helpers import book, thursday
from tests.homes.caldav_server import Radicale
from tests.homes.factories import LoanOfficerFactory, OfferProductFactory, officer_with_week

pytestmark = pytest.mark.django_db


@pytest.fixture
def previous_server(tmp_path):
    """A second CalDAV server, for the calendar an officer moves away from."""
    server = Radicale(tmp_path / "previous").start()
    yield server
    server.stop()


def _officer_form(**overrides):
    data = {
        "name": "Dana Whitfield",
        "title": "Senior loan officer",
        "email": "Dana@Lender.test",
        "nmls_id": "123456",
        "is_active": "on",
        "slot_minutes": 30,
        "buffer_minutes": 10,
        "days_ahead": 21,
        "caldav_url": "",
        "caldav_username": "",
        "caldav_password": "",
        "availability-TOTAL_FORMS": 2,
        "availability-INITIAL_FORMS": 0,
        "availability-MIN_NUM_FORMS": 0,
        "availability-MAX_NUM_FORMS": 1000,
        "availability-0-weekday": 1,
        "availability-0-start_time": "09:00",
        "availability-0-end_time": "12:00",
        "availability-1-weekday": 1,
        "availability-1-start_time": "13:00",
        "availability-1-end_time": "17:00",
    }
    data.update(overrides)
    return data


def test_officer__created_with_weekly_availability_and_an_encrypted_calendar_login(
    tenant, radicale
):
    env = tenant.production
    calendar = radicale.calendar()
    heloc = OfferProductFactory(environment=env)
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    response = client.post(
        reverse("admin:homes_loanofficer_add"),
        _officer_form(
            offers=[heloc.pk],
            caldav_url=calendar.url,
            caldav_username=calendar.username,
            caldav_password=calendar.password,
        ),
        follow=True,
    )
    assert response.status_code == 200
    assert "the calendar answers" in response.content.decode()
    with environment_scope(env):
        officer = LoanOfficer.objects.get()
        windows = [str(w) for w in OfficerAvailability.objects.filter(officer=officer)]
        assert list(officer.offers.all()) == [heloc]
    assert officer.email == "dana@lender.test"
    assert windows == ["Tuesday 09:00-12:00", "Tuesday 13:00-17:00"]
    assert officer.caldav_status == LoanOfficer.CalendarStatus.OK
    with connection.cursor() as cursor:
        cursor.execute("SELECT caldav_password FROM homes_loanofficer WHERE id = %s", [officer.pk])
        (stored,) = cursor.fetchone()
    assert calendar.password not in stored  # encrypted at rest
    page = client.get(reverse("admin:homes_loanofficer_change", args=[officer.pk]))
    assert calendar.password not in page.content.decode()  # never shown back
    with environment_scope(env):
        entry = AuditEntry.objects.filter(object_type="homes.LoanOfficer").first()
    assert calendar.password not in str(entry.changes)

    # Saving again without typing the password keeps it.
    data = _officer_form(caldav_url=calendar.url, caldav_username=calendar.username)
    data.update({"availability-TOTAL_FORMS": 0, "name": "Dana W."})
    data.pop("availability-0-weekday")
    client.post(reverse("admin:homes_loanofficer_change", args=[officer.pk]), data)
    with environment_scope(env):
        officer.refresh_from_db()
        assert OfficerAvailability.objects.filter(officer=officer).count() == 2  # not posted
    assert (officer.name, officer.caldav_password) == ("Dana W.", calendar.password)


def test_officer__calendar_changed_while_the_previous_is_down__kept_and_staff_told__or_left(
    tenant, radicale, previous_server, django_capture_on_commit_callbacks
):
    env = tenant.production
    old = previous_server.calendar()
    officer = officer_with_week(
        env, caldav_url=old.url, caldav_username=old.username, caldav_password=old.password
    )
    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    previous_server.stop()
    new = radicale.calendar()
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:homes_loanofficer_change", args=[officer.pk])
    data = _officer_form(
        name="Sam Rivera",
        email=officer.email,
        caldav_url=new.url,
        caldav_username=new.username,
        caldav_password=new.password,
        **{"availability-TOTAL_FORMS": 0},
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, follow=True)
    html = response.content.decode()
    assert "The calendar was not changed" in html
    assert "could not be removed from the previous calendar" in html
    with environment_scope(env):
        officer.refresh_from_db()
    assert (officer.name, officer.caldav_url) == ("Sam Rivera", old.url)  # the rest is saved
    assert new.our_events() == []

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**data, "keep_previous_events": "on"}, follow=True)
    assert "The calendar was not changed" not in response.content.decode()
    with environment_scope(env):
        officer.refresh_from_db()
    assert officer.caldav_url == new.url
    assert [str(e["UID"]) for e in new.our_events()] == [appointment.uid]


def test_officer__overlapping_windows_or_duplicate_email__form_errors_nothing_saved(tenant):
    env = tenant.production
    officer_with_week(env, email="taken@lender.test")
    client = staff_client(staff_user(tenant.institution, "admin"), env)
    response = client.post(
        reverse("admin:homes_loanofficer_add"),
        _officer_form(**{"availability-1-start_time": "11:00"}),
    )
    assert response.status_code == 200
    assert "Overlaps another window of the same day." in response.content.decode()
    response = client.post(
        reverse("admin:homes_loanofficer_add"), _officer_form(email="TAKEN@lender.test")
    )
    assert "Another loan officer here has this email address." in response.content.decode()
    with environment_scope(env):
        assert LoanOfficer.objects.count() == 1


def test_officer__calendar_refusing_credentials__error_shown_to_staff(tenant, radicale):
    env = tenant.production
    calendar = radicale.calendar()
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    response = client.post(
        reverse("admin:homes_loanofficer_add"),
        _officer_form(
            caldav_url=calendar.url, caldav_username=calendar.username, caldav_password="wrong"
        ),
        follow=True,
    )
    html = response.content.decode()
    assert "The calendar server refused the credentials (401)" in html
    with environment_scope(env):
        officer = LoanOfficer.objects.get()
    assert officer.caldav_status == LoanOfficer.CalendarStatus.ERROR
    listing = client.get(reverse("admin:homes_loanofficer_changelist")).content.decode()
    assert "Error: The calendar server refused the credentials" in listing


def _change_form(officer, **overrides):
    """The officer's change form as it was shown (no availability rows), with overrides."""
    shown = {
        "name": officer.name,
        "title": officer.title,
        "email": officer.email,
        "nmls_id": officer.nmls_id,
        "slot_minutes": officer.slot_minutes,
        "buffer_minutes": officer.buffer_minutes,
        "days_ahead": officer.days_ahead,
        "availability-TOTAL_FORMS": 0,
    }
    return _officer_form(**{**shown, **overrides})


def _officer_entries(officer) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            object_type="homes.LoanOfficer", object_id=str(officer.pk)
        ).order_by("id")
    )


@pytest.mark.parametrize("role", ["it", "marketing"])
def test_officer_page__role_that_may_only_look__shows_whether_a_calendar_is_connected_not_its_login(
    tenant, role
):
    """A page that may only be looked at shows every field's stored value: the CalDAV URL
    (it may carry credentials or an internal host), username and password are left out."""
    officer = LoanOfficerFactory(
        environment=tenant.staging,
        caldav_url="https://cal.example.test/dav/sam/work/",
        caldav_username="sam.rivera.caldav",
        caldav_password="officer-calendar-password-7f3a",
    )
    url = reverse("admin:homes_loanofficer_change", args=[officer.pk])

    page = staff_client(staff_user(tenant.institution, role), tenant.staging).get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert "officer-calendar-password-7f3a" not in html
    assert "sam.rivera.caldav" not in html
    assert "cal.example.test" not in html
    assert 'readonly">Connected</div>' in html
    editor = staff_client(staff_user(tenant.institution, "lending"), tenant.staging).get(url)
    assert 'name="caldav_password"' in editor.content.decode()  # editors keep the fields


def test_officer__calendar_password_changed__audit_entry_names_it_never_its_value(tenant):
    """Snapshots redact the password alike before and after; the entry still says it
    changed, and a save that keeps it does not."""
    env = tenant.staging
    officer = LoanOfficerFactory(
        environment=env,
        caldav_url="http://127.0.0.1:9/dav/sam/",
        caldav_username="sam",
        caldav_password="the old password",
    )
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:homes_loanofficer_change", args=[officer.pk])
    calendar = {"caldav_url": officer.caldav_url, "caldav_username": "sam"}

    response = client.post(url, _change_form(officer, **calendar, caldav_password="the new one"))

    assert response.status_code == 302
    with environment_scope(env):
        officer.refresh_from_db()
    assert officer.caldav_password == "the new one"
    (changed,) = [e for e in _officer_entries(officer) if e.actor_id is not None]
    assert changed.changes["caldav_password"] == {"before": "[redacted]", "after": "[redacted]"}
    assert "the new one" not in str(changed.changes)
    assert "the old password" not in str(changed.changes)

    response = client.post(url, _change_form(officer, **calendar, title="Branch manager"))

    assert response.status_code == 302
    kept = _officer_entries(officer)[-1]
    assert kept.changes["title"]["after"] == "Branch manager"
    assert "caldav_password" not in kept.changes


def test_officer__offers_changed__audit_entry_shows_them_before_and_after(tenant):
    env = tenant.production
    officer = LoanOfficerFactory(environment=env)
    heloc = OfferProductFactory(environment=env)
    client = staff_client(staff_user(tenant.institution, "lending"), env)

    response = client.post(
        reverse("admin:homes_loanofficer_change", args=[officer.pk]),
        _change_form(officer, offers=[heloc.pk]),
    )

    assert response.status_code == 302
    with environment_scope(env):
        assert list(officer.offers.all()) == [heloc]
    entry = _officer_entries(officer)[-1]
    assert entry.changes["offers"] == {"before": [], "after": [heloc.pk]}


def test_appointment_actions__completed_no_show_cancel__by_lending_staff(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    officer = officer_with_week(env)
    first = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    second = book(env, MemberFactory(environment=env), officer, thursday(env, 11))
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:homes_appointment_changelist")
    response = client.post(
        url, {"action": "mark_completed", "_selected_action": [first.pk]}, follow=True
    )
    assert "has not started yet" in response.content.decode()
    with environment_scope(env):
        Appointment.objects.filter(pk=first.pk).update(
            start=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            end=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30),
        )
    client.post(url, {"action": "mark_no_show", "_selected_action": [first.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "cancel", "_selected_action": [second.pk]})
    with environment_scope(env):
        statuses = dict(Appointment.objects.values_list("pk", "status"))
        assert Appointment.objects.get(pk=second.pk).cancelled_by == "staff"
    assert statuses == {first.pk: "no_show", second.pk: "cancelled"}
    marketing = staff_client(staff_user(tenant.institution, "marketing"), env)
    assert marketing.get(url).status_code == 403  # member appointments are lending's


def test_retry_calendar_action__failed_sync_written_once_the_server_answers(
    tenant, radicale, django_capture_on_commit_callbacks
):
    env = tenant.production
    calendar = radicale.calendar()
    officer = officer_with_week(
        env,
        caldav_url=calendar.url,
        caldav_username=calendar.username,
        caldav_password=calendar.password,
    )
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    with environment_scope(env):
        Appointment.objects.filter(pk=appointment.pk).update(
            caldav_state="failed",
            caldav_error="The calendar server did not answer",
            caldav_attempts=6,
        )
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    listing = client.get(reverse("admin:homes_appointment_changelist")).content.decode()
    assert "Failed: The calendar server did not answer" in listing
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:homes_appointment_changelist"),
            {"action": "retry_calendar", "_selected_action": [appointment.pk]},
        )
    with environment_scope(env):
        appointment.refresh_from_db()
    assert appointment.caldav_state == Appointment.CalendarSync.SYNCED
    assert [str(e["UID"]) for e in calendar.our_events()] == [appointment.uid]


def test_week_calendar__officers_appointments_by_day_and_hour__own_environment_only(
    tenant, other_tenant
):
    env = tenant.production
    sam = officer_with_week(env, name="Sam Rivera")
    lee = officer_with_week(env, name="Lee Chen")
    member = MemberFactory(environment=env, first_name="Ada", last_name="Park")
    start = thursday(env, 10, 30)
    book(env, member, sam, start)
    book(env, MemberFactory(environment=env, first_name="Bo", last_name="Diaz"), lee, start)
    stranger = officer_with_week(other_tenant.production)
    book(
        other_tenant.production, MemberFactory(environment=other_tenant.production), stranger, start
    )

    client = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:homes_appointment_calendar")
    week = start.astimezone(env.institution.tz).date().isoformat()
    html = client.get(url, {"week": week}).content.decode()
    assert "2 appointments this week" in html
    assert "<strong>10:30</strong> Ada Park" in html  # institution time
    assert "with Sam Rivera" in html
    assert "Bo Diaz" in html
    only_sam = client.get(url, {"week": week, "officer": sam.pk}).content.decode()
    assert "1 appointment this week" in only_sam
    assert "Bo Diaz" not in only_sam
    assert (
        "Week calendar"
        in client.get(reverse("admin:homes_appointment_changelist")).content.decode()
    )
    marketing = staff_client(staff_user(tenant.institution, "marketing"), env)
    assert marketing.get(url).status_code == 403


@pytest.mark.parametrize(
    ("week", "days_from_today"),
    [("9999-12-31", 10 * 366), ("0001-01-01", -10 * 366), ("2024-02-30", 0)],
    ids=["year-9999", "year-1", "no-such-day"],
)
def test_week_calendar__week_at_the_ends_of_the_calendar__shows_the_nearest_week_in_reach(
    tenant, week, days_from_today
):
    env = tenant.production
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    response = client.get(reverse("admin:homes_appointment_calendar"), {"week": week})
    assert response.status_code == 200
    day = dt.datetime.now(env.institution.tz).date() + dt.timedelta(days=days_from_today)
    assert response.context["grid"].start == day - dt.timedelta(days=day.weekday())
