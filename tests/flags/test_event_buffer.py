"""Page views written in batches (flags.services.event_buffer), on PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from flags import selectors
from flags.defaults import demo_plan_points
from flags.models import Event
from flags.services import event_buffer
from flags.services.erasure import members_erase
from flags.services.plans import data_plan_version_create
from flags.tasks import events_unlink_members_task
from homes.models import Member
from institutions import events
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def buffered(settings):
    require_postgres()
    settings.FLAGS_EVENTS_FLUSH_SECONDS = 60.0  # written only when the test says
    yield
    with event_buffer._lock:
        event_buffer._rows.clear()


@pytest.fixture
def env(tenant):
    env = tenant.production
    with environment_scope(env):
        data_plan_version_create(environment=env, points=demo_plan_points(), actor=None)
    return env


def _view(env, member) -> None:
    events.emit(environment=env, name="dashboard_viewed", member=member, sync_commit=False)


def _stored(env):
    with environment_scope(env):
        return list(Event.objects.filter(name="dashboard_viewed").order_by("id"))


@contextmanager
def _table_away():
    """The events table out of the database's reach (renamed) while inside: a real failure
    of every write to it."""
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO flags_event_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE flags_event_away RENAME TO {table}")


def test_page_views__buffered__written_together_as_they_were_classified(buffered, env):
    members = [MemberFactory(environment=env, is_test=i == 0) for i in range(3)]
    for member in members:
        _view(env, member)

    assert event_buffer.pending() == 3
    assert _stored(env) == []
    assert event_buffer.flush() == 3

    stored = _stored(env)
    assert [e.member_id for e in stored] == [m.pk for m in members]
    assert [e.is_test for e in stored] == [True, False, False]
    assert {(e.plan_status, e.disposition, e.source) for e in stored} == {
        ("planned", "accepted", "server")
    }
    assert all(e.received_at >= e.occurred_at for e in stored)
    assert event_buffer.pending() == 0


def test_page_views__interval_passed__the_next_view_writes_them(buffered, env, settings):
    member = MemberFactory(environment=env)
    _view(env, member)
    assert _stored(env) == []

    settings.FLAGS_EVENTS_FLUSH_SECONDS = 0.001
    _view(env, member)

    assert len(_stored(env)) == 2
    assert event_buffer.pending() == 0


def test_page_views__readers_in_the_process__count_them_at_once(buffered, env):
    from django.utils import timezone

    _view(env, MemberFactory(environment=env))
    start, end = selectors.default_window(timezone.now())

    with environment_scope(env):
        assert selectors.events_count(env, start, end, include_test=True) == 1


def test_page_views__database_fails__kept_and_written_by_the_next_flush(buffered, env):
    member = MemberFactory(environment=env)
    _view(env, member)
    with _table_away(), pytest.raises(Exception, match="flags_event"):
        event_buffer.flush()
    assert event_buffer.pending() == 1

    assert event_buffer.flush() == 1
    assert [e.member_id for e in _stored(env)] == [member.pk]


def test_page_views__a_row_the_database_refuses__dropped_alone(buffered, env, caplog):
    kept, gone = MemberFactory(environment=env), MemberFactory(environment=env)
    _view(env, kept)
    _view(env, gone)
    _view(env, kept)
    with environment_scope(env):
        Member.objects.filter(pk=gone.pk).delete()  # its view now names no member

    assert event_buffer.flush() == 2

    assert [e.member_id for e in _stored(env)] == [kept.pk, kept.pk]
    assert event_buffer.pending() == 0
    assert "Dropped 1 page-view event" in caplog.text


def test_page_views__database_down_long__oldest_dropped_beyond_the_bound(
    buffered, env, monkeypatch, caplog
):
    monkeypatch.setattr(event_buffer, "MAX_BUFFERED", 2)
    member = MemberFactory(environment=env)
    for _ in range(3):
        _view(env, member)
    with _table_away(), pytest.raises(Exception, match="flags_event"):
        event_buffer.flush()

    assert event_buffer.pending() == 2
    assert "Dropped the 1 oldest unwritten page-view event" in caplog.text


def test_erasure__views_still_buffered__written_without_the_member(buffered, env):
    member = MemberFactory(environment=env)
    _view(env, member)

    with environment_scope(env):
        members_erase(environment=env, member_ids=[member.pk])

    assert [e.member_id for e in _stored(env)] == [None]


def test_erasure__second_pass__unlinks_views_written_after_the_first(buffered, env):
    member = MemberFactory(environment=env)
    with environment_scope(env):
        members_erase(environment=env, member_ids=[member.pk])
        # What another process's buffer writes after the first pass.
        Event.objects.create(
            environment=env, name="dashboard_viewed", member=member, occurred_at=member.created_at
        )

    assert events_unlink_members_task.delay(env.pk, [member.pk]).get() == 1
    assert [e.member_id for e in _stored(env)] == [None]


def test_page_views__flush_inside_a_transaction__left_for_the_next_write(buffered, env):
    from django.db import transaction

    _view(env, MemberFactory(environment=env))
    with transaction.atomic():
        assert event_buffer.flush() == 0
        assert event_buffer.pending() == 1
    assert event_buffer.flush() == 1
