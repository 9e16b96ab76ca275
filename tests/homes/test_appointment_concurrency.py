"""Two members can never book the same time, and one member never holds two times at once:
simultaneous bookings on PostgreSQL, each in its own thread and connection, and only one of
them succeeds."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from homes.models import Appointment
from homes.services import AppointmentError, appointment_reschedule
from institutions.tenancy import environment_scope
from tests.conftest import make_tenant
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import officer_with_week
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _at_once(actions):
    """Run every action at once, each in its own thread; returns the outcomes in order."""
    barrier = threading.Barrier(len(actions))
    outcomes: list = [None] * len(actions)

    def run(i):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = actions[i]()
        except Exception as error:  # refusals, and anything else: shown by the assertions
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def _race(env, officer, members, starts):
    """Book every (member, start) at once; returns the outcomes in order."""
    return _at_once(
        [
            lambda member=member, start=start: book(env, member, officer, start)
            for member, start in zip(members, starts, strict=True)
        ]
    )


@pytest.mark.parametrize(
    ("buffer", "spread"),
    [(0, False), (30, True)],
    ids=["same-start", "starts-within-the-buffer"],
)
def test_simultaneous_bookings__only_one_succeeds(buffer, spread):
    require_postgres()
    tenant = make_tenant()
    env = tenant.production
    officer = officer_with_week(env, buffer_minutes=buffer)
    members = [MemberFactory(environment=env) for _ in range(THREADS)]
    ten = thursday(env, 10)
    # Same start; or starts half an hour apart, which a 30-minute buffer makes collide
    # (the unique constraint alone would not catch those: the officer's lock does).
    starts = [ten + dt.timedelta(minutes=30 * (i % 2)) if spread else ten for i in range(THREADS)]

    outcomes = _race(env, officer, members, starts)

    booked = [o for o in outcomes if isinstance(o, Appointment)]
    refused = [o for o in outcomes if isinstance(o, AppointmentError)]
    assert len(booked) == 1, outcomes
    assert len(refused) == THREADS - 1, outcomes
    assert {e.code for e in refused} == {"taken"}
    with environment_scope(env):
        rows = list(Appointment.objects.filter(officer=officer))
    assert [r.pk for r in rows] == [booked[0].pk]


def _active(env, member):
    with environment_scope(env):
        return list(Appointment.objects.filter(member=member, status=Appointment.Status.BOOKED))


def test_one_member_books_two_officers_at_once__only_one_succeeds():
    require_postgres()
    tenant = make_tenant()
    env = tenant.production
    officers = [officer_with_week(env, name=f"Officer {i}") for i in range(THREADS)]
    member = MemberFactory(environment=env)
    ten = thursday(env, 10)

    outcomes = _at_once(
        [lambda officer=officer: book(env, member, officer, ten) for officer in officers]
    )

    booked = [o for o in outcomes if isinstance(o, Appointment)]
    refused = [o for o in outcomes if isinstance(o, AppointmentError)]
    assert len(booked) == 1, outcomes
    assert {e.code for e in refused} == {"member_busy"}, outcomes
    assert [a.pk for a in _active(env, member)] == [booked[0].pk]


def test_member_moves_into_a_time_while_booking_it_with_another_officer__only_one_succeeds():
    require_postgres()
    tenant = make_tenant()
    env = tenant.production
    sam, lee = officer_with_week(env, name="Sam"), officer_with_week(env, name="Lee")
    member = MemberFactory(environment=env)
    mine = book(env, member, sam, thursday(env, 10))
    two = thursday(env, 14)

    def move():
        with environment_scope(env):
            return appointment_reschedule(environment=env, appointment=mine, start=two)

    outcomes = _at_once([move, lambda: book(env, member, lee, two)])

    assert sum(isinstance(o, Appointment) for o in outcomes) == 1, outcomes
    assert [e.code for e in outcomes if isinstance(e, AppointmentError)] == ["member_busy"]
    assert [a.start for a in _active(env, member)].count(two) == 1
