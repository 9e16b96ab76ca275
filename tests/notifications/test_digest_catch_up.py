"""The monthly digests are not lost when the hourly beat misses the whole 1st."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from institutions.tenancy import environment_scope
from notifications.models import Delivery
from notifications.services.campaigns import DIGEST_CATCH_UP_LAST_DAY, campaigns_due
from tests.notifications.helpers import deliveries, members
from tests.notifications.test_campaigns import set_market

JUNE = ["home_value:2026-06", "offer_summary:2026-06"]


def local(environment, *args) -> datetime:
    return datetime(*args, tzinfo=environment.institution.tz)


def hourly(capture, env, *when) -> list[str]:
    """One run of the hourly beat for this environment (tasks eager, after commit)."""
    with capture(execute=True), environment_scope(env):
        return campaigns_due(environment=env, now=local(env, *when))["started"]


def member_reads(env, *when) -> int:
    """How many queries a run makes on the members table."""
    with CaptureQueriesContext(connection) as queries, environment_scope(env):
        campaigns_due(environment=env, now=local(env, *when))
    return sum('"homes_member"' in q["sql"] for q in queries.captured_queries)


@pytest.fixture
def env(tenant):
    set_market(tenant.production, None)  # digests only: no refinance alert
    return tenant.production


@pytest.mark.parametrize("day", [2, DIGEST_CATCH_UP_LAST_DAY])
def test_campaigns_due__beat_down_all_of_the_1st__digests_start_on_the_next_days_from_nine(
    env, django_capture_on_commit_callbacks, day
):
    people = members(env, 3)
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, day, 8, 30) == []
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, day, 9, 30) == JUNE
    rows = deliveries(env, campaign_key__in=JUNE)
    assert len(rows) == 6
    assert {r.member_id for r in rows} == {m.pk for m in people}
    assert {r.state for r in rows} == {Delivery.State.SENT}
    assert len(mail.outbox) == 6


def test_campaigns_due__started_on_the_1st__the_2nd_starts_nothing_and_rescans_no_member(
    env, django_capture_on_commit_callbacks
):
    members(env, 3)
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, 1, 9, 5) == JUNE
    assert len(mail.outbox) == 6
    late = members(env, 1)[0]  # enrolled after the month's digest went out

    ordinary_day = member_reads(env, 2026, 6, 10, 10, 0)  # the welcome catch-up's read
    for day, hour in ((2, 9), (2, 10), (3, 15)):
        assert member_reads(env, 2026, 6, day, hour, 0) == ordinary_day
        assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, day, hour, 30) == []
    assert len(mail.outbox) == 6
    assert deliveries(env, campaign_key__in=JUNE, member=late) == []


def test_campaigns_due__missed_until_after_the_3rd__no_digest_that_month(
    env, django_capture_on_commit_callbacks
):
    members(env, 2)
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, 4, 0, 30) == []
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, 4, 9, 0) == []
    assert hourly(django_capture_on_commit_callbacks, env, 2026, 6, 20, 12, 0) == []
    assert deliveries(env, campaign_key__in=JUNE) == []
    assert mail.outbox == []


def test_campaigns_due__catching_up__repeated_hourly_runs_send_each_member_once(
    env, django_capture_on_commit_callbacks
):
    people = members(env, 2)
    runs = [(2, 9, 0), (2, 9, 0), (2, 10, 0), (2, 23, 0), (3, 9, 0), (3, 18, 0)]
    started = [hourly(django_capture_on_commit_callbacks, env, 2026, 6, *run) for run in runs]
    assert started == [JUNE, [], [], [], [], []]
    rows = deliveries(env, campaign_key__in=JUNE)
    assert sorted((r.member_id, r.campaign_key) for r in rows) == sorted(
        (m.pk, key) for m in people for key in JUNE
    )
    assert len(mail.outbox) == 4
