"""The outbox writes a plan's rows the same way on every path: bulk_create, or on PostgreSQL
COPY and one INSERT ... ON CONFLICT DO NOTHING; a second run adds nothing and sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from django.db import connection

from institutions.tenancy import environment_scope
from notifications.models import Delivery, NotificationProfile, NotificationSettings
from notifications.services.outbox import DeliveryPlan, deliveries_enqueue
from notifications.services.preferences import emails_sent_count
from tests.notifications.helpers import deliveries, members

pytestmark = pytest.mark.django_db

FIELDS = ("member_id", "channel", "state", "reason", "context", "scheduled_at", "template_key")


def plan_for(people, *, missing=(), scheduled_at=None) -> DeliveryPlan:
    return DeliveryPlan(
        campaign_key="home_value:2026-05",
        template_key="home_value",
        category="home_value",
        contexts={
            m.pk: None if m in missing else {"home": {"value": str(m.pk), "note": "a\tb\\c\nd"}}
            for m in people
        },
        missing_reason="no home value",
        scheduled_at=scheduled_at,
    )


@pytest.fixture(params=["bulk", "copy"])
def write_path(request, settings):
    if request.param == "copy":
        if connection.vendor != "postgresql":
            pytest.skip("COPY is the PostgreSQL path: runs in the PostgreSQL pass")
        settings.NOTIFICATIONS_COPY_FROM = 1
    else:
        settings.NOTIFICATIONS_COPY_FROM = 10**9
    return request.param


def test_enqueue__writes_pending_and_suppressed_rows__dispatches_the_due(
    tenant, write_path, django_capture_on_commit_callbacks
):
    env = tenant.production
    people = members(env, 4)
    with environment_scope(env), django_capture_on_commit_callbacks() as queued:
        due = deliveries_enqueue(
            environment=env, plan=plan_for(people, missing=[people[3]]), members=people
        )
    rows = {r.member_id: r for r in deliveries(env)}
    assert sorted(due) == sorted(rows[m.pk].pk for m in people[:3])
    assert len(queued) == 1  # one send task for the batch, after the commit
    for member in people[:3]:
        row = rows[member.pk]
        assert (row.state, row.channel, row.reason) == ("pending", "email", "")
        assert row.context == {"home": {"value": str(member.pk), "note": "a\tb\\c\nd"}}
        assert row.dispatched_at is not None
    assert (rows[people[3].pk].state, rows[people[3].pk].reason) == ("suppressed", "no home value")
    assert rows[people[3].pk].dispatched_at is None


def test_enqueue__run_again__adds_nothing_and_dispatches_nothing(
    tenant, write_path, django_capture_on_commit_callbacks
):
    env = tenant.production
    people = members(env, 3)
    with environment_scope(env), django_capture_on_commit_callbacks():
        deliveries_enqueue(environment=env, plan=plan_for(people), members=people)
    before = [(r.pk, *(getattr(r, f) for f in FIELDS)) for r in deliveries(env)]
    with environment_scope(env), django_capture_on_commit_callbacks() as queued:
        due = deliveries_enqueue(environment=env, plan=plan_for(people), members=people)
    assert due == []
    assert queued == []
    assert [(r.pk, *(getattr(r, f) for f in FIELDS)) for r in deliveries(env)] == before


def test_enqueue__existing_row_never_queued__is_dispatched_by_the_next_run(
    tenant, write_path, django_capture_on_commit_callbacks
):
    env = tenant.production
    people = members(env, 2)
    with environment_scope(env), django_capture_on_commit_callbacks():
        deliveries_enqueue(environment=env, plan=plan_for(people[:1]), members=people[:1])
        # As if its send task had never been queued (a crash between commit and publish).
        Delivery.objects.filter(environment=env).update(dispatched_at=None)
    with environment_scope(env), django_capture_on_commit_callbacks():
        due = deliveries_enqueue(environment=env, plan=plan_for(people), members=people)
    assert sorted(due) == sorted(r.pk for r in deliveries(env))


def test_enqueue__quiet_hours__deferred_rows_wait_undispatched(
    tenant, write_path, django_capture_on_commit_callbacks
):
    env = tenant.production  # America/New_York
    people = members(env, 2)
    with environment_scope(env):
        NotificationSettings.objects.create(
            environment=env, quiet_start=time(21, 0), quiet_end=time(8, 0)
        )
    late = datetime(2099, 5, 2, 3, 30, tzinfo=UTC)  # 23:30 in New York
    with environment_scope(env), django_capture_on_commit_callbacks():
        due = deliveries_enqueue(
            environment=env, plan=plan_for(people, scheduled_at=late), members=people
        )
    assert due == []
    rows = deliveries(env)
    assert {r.scheduled_at for r in rows} == {datetime(2099, 5, 2, 12, 0, tzinfo=UTC)}
    assert {r.dispatched_at for r in rows} == {None}


def test_emails_sent_count__new_existing_and_repeated_members__counted_once_each(tenant):
    env = tenant.production
    fresh, known = members(env, 2)
    with environment_scope(env):
        NotificationProfile.objects.create(environment=env, member=known, unopened_count=4)
        emails_sent_count(environment=env, member_ids=[fresh.pk, known.pk, known.pk])
        counts = dict(
            NotificationProfile.objects.filter(environment=env).values_list(
                "member_id", "unopened_count"
            )
        )
    assert counts == {fresh.pk: 1, known.pk: 6}
