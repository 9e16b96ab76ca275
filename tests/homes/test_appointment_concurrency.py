"""Two members can never book the same time: simultaneous bookings on PostgreSQL, each in
its own thread and connection, and only one of them succeeds."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from homes.models import Appointment
from homes.services import AppointmentError
from institutions.tenancy import environment_scope
from tests.conftest import make_tenant
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import officer_with_week
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def _race(env, officer, members, starts):
    """Book every (member, start) at once; returns the outcomes in order."""
    barrier = threading.Barrier(len(members))
    outcomes: list = [None] * len(members)

    def run(i):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = book(env, members[i], officer, starts[i])
        except Exception as error:  # refusals, and anything else: shown by the assertions
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(members))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


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
