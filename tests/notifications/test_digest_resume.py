"""A monthly digest whose fan-out started on the 1st but lost chunk tasks is finished on the
catch-up days, and no member gets a month's digest twice.

The hourly beat task and the chunk tasks run for real (eagerly, after commit), at the
institution's local times the tests set the clock to.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import homes.selectors
from notifications import tasks
from notifications.models import Delivery
from notifications.services.campaigns import DIGEST_CATCH_UP_LAST_DAY
from tests.notifications.helpers import deliveries, members
from tests.notifications.test_campaigns import set_market

pytestmark = pytest.mark.django_db

JUNE = ["home_value:2026-06", "offer_summary:2026-06"]


class WorkerLost(Exception):
    """The worker running a chunk task died and the broker lost the task's message."""


@pytest.fixture
def env(tenant, settings):
    set_market(tenant.production, None)  # digests only: no refinance alert
    settings.NOTIFICATIONS_FANOUT_CHUNK = 2  # five members: chunks of 2, 2 and 1
    return tenant.production


@pytest.fixture
def lost(home_data, monkeypatch) -> set[int]:
    """Member ids whose chunk task never completes: it dies before writing anything."""
    members_lost: set[int] = set()
    home_summaries = homes.selectors.home_summaries  # the suite's home data

    def dying(*, environment, member_ids):
        if members_lost & set(member_ids):
            raise WorkerLost(f"chunk {member_ids} lost")
        return home_summaries(environment=environment, member_ids=member_ids)

    monkeypatch.setattr(homes.selectors, "home_summaries", dying)
    return members_lost


@pytest.fixture
def hourly(env, monkeypatch, django_capture_on_commit_callbacks):
    """One run of the hourly beat task at a local time; what it started in `env`."""

    def run(*when) -> list[str]:
        moment = datetime(*when, tzinfo=env.institution.tz)
        monkeypatch.setattr(timezone, "now", lambda: moment)
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.daily()[env.pk]["started"]

    return run


@pytest.fixture
def member_reads(hourly):
    """How many queries a run of the beat makes on the members table."""

    def count(*when) -> int:
        with CaptureQueriesContext(connection) as queries:
            hourly(*when)
        return sum('"homes_member"' in q["sql"] for q in queries.captured_queries)

    return count


def digests_by_member(env) -> Counter:
    """(member id, campaign key, channel) -> how many rows; each must be 1."""
    rows = deliveries(env, campaign_key__in=JUNE)
    return Counter((r.member_id, r.campaign_key, r.channel) for r in rows)


def assert_every_member_got_each_digest_once(env, people) -> None:
    rows = deliveries(env, campaign_key__in=JUNE)
    assert sorted((r.member_id, r.campaign_key) for r in rows) == sorted(
        (m.pk, key) for m in people for key in JUNE
    )
    assert {r.state for r in rows} == {Delivery.State.SENT}
    assert set(digests_by_member(env).values()) == {1}
    received = Counter(address for message in mail.outbox for address in message.to)
    assert received == {m.email: len(JUNE) for m in people}


@pytest.mark.parametrize("day", [2, DIGEST_CATCH_UP_LAST_DAY])
def test_digest__chunk_tasks_lost_on_the_1st__resumed_on_the_catch_up_days_once_each(
    env, lost, hourly, member_reads, day
):
    people = members(env, 5)
    lost.add(people[2].pk)  # the chunk of people[2] and people[3], in both digests
    assert hourly(2026, 6, 1, 9, 5) == JUNE
    planned = {r.member_id for r in deliveries(env, campaign_key__in=JUNE)}
    assert planned == {people[0].pk, people[1].pk, people[4].pk}
    assert len(mail.outbox) == 6
    lost.clear()  # the workers are back; beat was down for the rest of the 1st

    assert hourly(2026, 6, day, 8, 30) == []  # not before 09:00
    assert hourly(2026, 6, day, 9, 30) == JUNE
    assert_every_member_got_each_digest_once(env, people)

    # Finished now: the next hours start nothing and read no more of the members table
    # than an ordinary day (the welcome catch-up's read).
    ordinary_day = member_reads(2026, 6, 10, 10, 0)
    assert member_reads(2026, 6, day, 10, 0) == ordinary_day
    assert hourly(2026, 6, day, 11, 0) == []
    assert len(mail.outbox) == 10


def test_digest__resumed_on_the_2nd__a_late_chunk_task_or_a_lost_record_sends_nothing_twice(
    env, lost, hourly, member_reads, django_capture_on_commit_callbacks
):
    """The outbox's unique key holds whatever runs again: the lost chunk's task delivered
    after all (a broker that had kept it), or a cache that lost the fan-out's record."""
    people = members(env, 5)
    lost.add(people[2].pk)
    hourly(2026, 6, 1, 9, 5)
    lost.clear()
    assert hourly(2026, 6, 2, 9, 30) == JUNE
    assert_every_member_got_each_digest_once(env, people)
    rows = len(deliveries(env))

    late_chunk = [people[2].pk, people[3].pk]
    for campaign in ("home_value", "offer_summary"):
        with django_capture_on_commit_callbacks(execute=True):
            result = tasks.campaign_chunk.delay(env.pk, campaign, "2026-06", late_chunk)
        assert result.get() == 0  # nothing dispatched
    assert len(deliveries(env)) == rows
    assert_every_member_got_each_digest_once(env, people)

    cache.clear()  # the record of the fan-out is gone
    assert hourly(2026, 6, 2, 10, 0) == []  # one scan: every member is planned already
    ordinary_day = member_reads(2026, 6, 10, 10, 0)
    assert member_reads(2026, 6, 2, 11, 0) == ordinary_day  # recorded again
    assert len(deliveries(env)) == rows
    assert_every_member_got_each_digest_once(env, people)


def test_digest__finished_on_the_1st__catch_up_days_resume_nothing_and_scan_no_member(
    env, hourly, member_reads
):
    people = members(env, 5)
    assert hourly(2026, 6, 1, 9, 5) == JUNE
    assert_every_member_got_each_digest_once(env, people)
    late = members(env, 1)[0]  # enrolled after the month's digest went out

    ordinary_day = member_reads(2026, 6, 10, 10, 0)
    for day, hour in ((2, 9), (2, 10), (DIGEST_CATCH_UP_LAST_DAY, 15)):
        assert member_reads(2026, 6, day, hour, 0) == ordinary_day
        assert hourly(2026, 6, day, hour, 30) == []
    assert_every_member_got_each_digest_once(env, people)
    assert deliveries(env, campaign_key__in=JUNE, member=late) == []


def test_digest__chunk_tasks_lost_and_beat_down_until_after_the_3rd__nothing_resumes(
    env, lost, hourly
):
    """Past DIGEST_CATCH_UP_LAST_DAY a month's digest is stale (the home value and offer of
    the month's start): the members of a lost chunk wait for next month's, as do all
    members when a digest never started in the catch-up days."""
    people = members(env, 5)
    lost.add(people[2].pk)
    hourly(2026, 6, 1, 9, 5)
    lost.clear()
    for day, hour in ((DIGEST_CATCH_UP_LAST_DAY + 1, 9), (DIGEST_CATCH_UP_LAST_DAY + 1, 15)):
        assert hourly(2026, 6, day, hour, 0) == []
    assert hourly(2026, 6, 20, 12, 0) == []
    missed = deliveries(env, campaign_key__in=JUNE, member_id__in=[people[2].pk, people[3].pk])
    assert missed == []
    assert len(mail.outbox) == 6
