"""The beat sweeper on its own: what is stuck is sent, what is in flight or not due is not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from institutions.tenancy import environment_scope
from notifications import tasks
from notifications.models import Delivery
from notifications.services import deliveries_sweep
from tests.notifications.factories import DeliveryFactory
from tests.notifications.helpers import deliveries

pytestmark = pytest.mark.django_db


def row(environment, **fields) -> Delivery:
    """A welcome email (needs no home data) in the given state."""
    defaults = {
        "template_key": "welcome_1",
        "category": "account",
        "state": Delivery.State.PENDING,
        "scheduled_at": timezone.now() - timedelta(minutes=1),
    }
    return DeliveryFactory(environment=environment, **{**defaults, **fields})


def test_sweep__pending_never_queued__is_sent(tenant, django_capture_on_commit_callbacks):
    env = tenant.production
    stuck = row(env, dispatched_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.sweep()
    assert result[env.pk] == {"released": 0, "dispatched": 1}
    (after,) = deliveries(env, pk=stuck.pk)
    assert after.state == Delivery.State.SENT
    assert after.attempts == 1
    assert [m.to for m in mail.outbox] == [[stuck.member.email]]


def test_sweep__sending_past_the_lease__released_and_sent_once(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_SENDING_LEASE_SECONDS = 600
    env = tenant.production
    long_ago = timezone.now() - timedelta(minutes=11)
    dead_worker = row(env, state="sending", attempts=1, claimed_at=long_ago, dispatched_at=long_ago)
    in_flight = row(
        env,
        state="sending",
        attempts=1,
        claimed_at=timezone.now() - timedelta(minutes=2),
        dispatched_at=timezone.now() - timedelta(minutes=2),
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.sweep()
    assert result[env.pk] == {"released": 1, "dispatched": 1}
    (released,) = deliveries(env, pk=dead_worker.pk)
    assert (released.state, released.attempts) == ("sent", 2)
    assert deliveries(env, pk=in_flight.pk)[0].state == Delivery.State.SENDING
    assert [m.to for m in mail.outbox] == [[dead_worker.member.email]]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep()[env.pk] == {"released": 0, "dispatched": 0}
    assert len(mail.outbox) == 1


def test_sweep__queued_recently_or_not_due__left_alone__lost_queue_redispatched(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_REDISPATCH_SECONDS = 300
    env = tenant.production
    now = timezone.now()
    queued = row(env, dispatched_at=now - timedelta(minutes=1))
    lost = row(env, dispatched_at=now - timedelta(minutes=6))
    future = row(env, scheduled_at=now + timedelta(days=2), dispatched_at=None)
    finished = [row(env, state=state, dispatched_at=None) for state in ("sent", "dead", "failed")]
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        result = deliveries_sweep(environment=env)
    assert result == {"released": 0, "dispatched": 1}
    states = {d.pk: d.state for d in deliveries(env)}
    assert states[lost.pk] == "sent"
    assert states[queued.pk] == "pending"
    assert states[future.pk] == "pending"
    assert [states[d.pk] for d in finished] == ["sent", "dead", "failed"]
    assert [m.to for m in mail.outbox] == [[lost.member.email]]

    # Two days later (an explicit clock) the scheduled one is due and is queued.
    with django_capture_on_commit_callbacks(execute=False) as queued_tasks, environment_scope(env):
        later = deliveries_sweep(environment=env, now=now + timedelta(days=2, minutes=1))
    assert later["dispatched"] == 2  # the scheduled one, and the one queued long "ago"
    assert len(queued_tasks) == 1  # one send task for the batch


def test_sweep__other_tenants_rows__swept_in_their_own_scope(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    mine = row(tenant.production, dispatched_at=None)
    theirs = row(other_tenant.production, dispatched_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    assert deliveries(tenant.production, pk=mine.pk)[0].state == "sent"
    assert deliveries(other_tenant.production, pk=theirs.pk)[0].state == "sent"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([mine.member.email, theirs.member.email])


def test_sweep_release_and_staff_retry__bump_updated_at(
    tenant, settings, django_capture_on_commit_callbacks
):
    from notifications.services import deliveries_retry

    settings.NOTIFICATIONS_SENDING_LEASE_SECONDS = 600
    env = tenant.production
    long_ago = timezone.now() - timedelta(hours=1)
    stuck = row(env, state="sending", claimed_at=long_ago, dispatched_at=long_ago)
    dead = row(env, state="dead", dispatched_at=long_ago)
    with environment_scope(env):
        Delivery.objects.filter(pk__in=[stuck.pk, dead.pk]).update(updated_at=long_ago)
        assert set(Delivery.objects.values_list("updated_at", flat=True)) == {long_ago}
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=False):
            deliveries_sweep(environment=env)
            deliveries_retry(environment=env, delivery_ids=[dead.pk])
    after = {d.pk: d for d in deliveries(env)}
    assert after[stuck.pk].reason == "released by sweeper"
    assert after[dead.pk].reason == "retried by staff"
    assert all(d.updated_at >= before for d in after.values())
