"""A sending process killed (SIGKILL) at each point around SMTP's final "." of DATA.

The server takes a message when it receives the final "."; the delivery is recorded sent in a
transaction that commits right after that write. These tests kill a real process at the
points on either side and check what the sink received and what the sweeper then does.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from institutions.tenancy import environment_scope
from notifications.models import Delivery
from notifications.services import deliveries_sweep
from notifications.services.campaigns import campaign_enqueue_members
from notifications.services.sending import deliveries_send
from tests.celery_worker import ROOT, process_env, wait_until
from tests.notifications.helpers import deliveries, members

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list:
    """Send tasks are queued, not run: the process under test is the worker."""
    from notifications.tasks import send_deliveries

    calls = []
    monkeypatch.setattr(send_deliveries, "apply_async", lambda *a, **kw: calls.append(kw))
    return calls


def enqueue(env, people) -> list[int]:
    with environment_scope(env):
        campaign_enqueue_members(
            environment=env,
            campaign="home_value",
            period="2026-05",
            member_ids=[m.pk for m in people],
        )
    return [d.pk for d in deliveries(env)]


def send_and_die(point: str, env, ids: list[int], sink) -> None:
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.notifications.kill_point",
            point,
            str(env.pk),
            *map(str, ids),
        ],
        cwd=ROOT,
        env=process_env(
            EMAIL_URL=sink.url,
            NOTIFICATIONS_HOME_SUMMARIES="tests.notifications.fake_homes.home_summaries",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]


def sweep_and_resend(env) -> dict:
    later = timezone.now() + timedelta(hours=1)  # past every lease
    with environment_scope(env):
        released = deliveries_sweep(environment=env, now=later)["released"]
        ids = [d.pk for d in deliveries(env, state=Delivery.State.PENDING)]
        sent = deliveries_send(environment=env, delivery_ids=ids).sent if ids else 0
    return {"released": released, "sent": sent}


def received(sink, expected: dict) -> Counter:
    """What the sink holds, once it holds at least what is expected (its server thread
    may still be reading what the dead process wrote)."""
    count = lambda: Counter(m["X-Chimney-Delivery"] for _, m in sink.messages)  # noqa: E731
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: sum(count().values()) >= sum(expected.values()), timeout=10)
    return count()


def test_killed_before_the_final_dot__nothing_recorded__the_sweeper_sends_it_once(
    tenant, smtp_settings
):
    env = tenant.production
    (member,) = members(env, 1)
    ids = enqueue(env, [member])
    send_and_die("before-dot", env, ids, smtp_settings)
    # The server never got the ".": no message; the mark died with its transaction.
    assert smtp_settings.messages == []
    assert [(d.state, d.sent_at) for d in deliveries(env)] == [(Delivery.State.SENDING, None)]

    assert sweep_and_resend(env) == {"released": 1, "sent": 1}
    assert received(smtp_settings, {str(ids[0]): 1}) == {str(ids[0]): 1}
    assert [d.state for d in deliveries(env)] == [Delivery.State.SENT]


def test_killed_waiting_for_the_servers_reply__recorded_sent__never_sent_again(
    tenant, smtp_settings
):
    env = tenant.production
    (member,) = members(env, 1)
    ids = enqueue(env, [member])
    send_and_die("at-reply", env, ids, smtp_settings)
    (row,) = deliveries(env)
    assert (row.state, row.sink) == (Delivery.State.SENT, "")
    assert row.provider_message_id.startswith(f"<delivery.{row.pk}.")

    assert sweep_and_resend(env) == {"released": 0, "sent": 0}
    assert received(smtp_settings, {str(row.pk): 1}) == {str(row.pk): 1}


def test_killed_between_the_dot_and_the_commit__the_message_is_not_lost(tenant, smtp_settings):
    """The one instant left (two socket writes, no read between): at-least-once. The
    server has the message and the record rolled back, so the sweeper sends it again."""
    env = tenant.production
    (member,) = members(env, 1)
    ids = enqueue(env, [member])
    send_and_die("after-dot", env, ids, smtp_settings)
    assert received(smtp_settings, {str(ids[0]): 1}) == {str(ids[0]): 1}
    assert [d.state for d in deliveries(env)] == [Delivery.State.SENDING]

    assert sweep_and_resend(env) == {"released": 1, "sent": 1}
    assert received(smtp_settings, {str(ids[0]): 2}) == {str(ids[0]): 2}  # a duplicate, not a loss
