"""Guarded rollouts: test cohort, then a percentage, then everyone, each after the oracle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from flags.models import Flag, RequestMetric, Rollout
from flags.services.flags import flag_kill
from flags.services.rollouts import rollout_advance, rollout_start
from flags.tasks import rollout_advance_task, rollouts_tick
from institutions.tenancy import environment_scope
from tests.factories import staff_user
from tests.flags.factories import FlagFactory, OracleRuleFactory
from tests.notifications.conftest import SMTPSink, free_port, smtp_at


def traffic(env, *, count, errors, at):
    RequestMetric.objects.create(
        environment=env,
        minute=at.replace(second=0, microsecond=0),
        cohort="member",
        count=count,
        errors=errors,
        le_50=count,
    )


@pytest.fixture
def setup(tenant):
    env = tenant.production
    admin = staff_user(tenant.institution, "admin", email="admin@cu.example")
    # The flag came to production by a release: staging has it too.
    FlagFactory(environment=tenant.staging, name="dashboard_equity_widget")
    with environment_scope(env):
        OracleRuleFactory(environment=env, group="rollout", name="5xx")
        flag = FlagFactory(environment=env, name="dashboard_equity_widget")
        yield env, admin, flag


@pytest.mark.django_db
def test_rollout__oracle_passes_each_step__reaches_everyone(setup):
    env, admin, flag = setup
    rollout = rollout_start(
        environment=env, flag=flag, actor=admin, steps=["test", 5, "everyone"], step_minutes=10
    )
    flag.refresh_from_db()
    assert (flag.test_cohort, flag.percent, flag.everyone) == (True, None, None)
    now = rollout.step_started_at
    assert rollout_advance(environment=env, rollout=rollout, now=now + timedelta(minutes=5)) == (
        "waiting"
    )
    for expected in ("advanced", "advanced", "completed"):
        rollout.refresh_from_db()
        traffic(env, count=300, errors=0, at=rollout.step_started_at + timedelta(minutes=1))
        now = rollout.step_started_at + timedelta(minutes=11)
        assert rollout_advance(environment=env, rollout=rollout, now=now) == expected
        flag.refresh_from_db()
        if expected == "advanced" and rollout.step_index == 0:
            assert float(flag.percent) == 5.0
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED
    assert flag.everyone is True
    assert [h["verdict"] for h in rollout.history] == ["pass", "pass", "pass"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "named"),
    [
        # Flags hold a percentage to one decimal: 2.55 could never be applied.
        (["test", 2.55, "everyone"], "Step 2: 2.55 has more than one decimal place"),
        (["test", "everyone", 5, "everyone"], 'Step 2: "everyone" can only be the last'),
        (["test", 5, "test", "everyone"], 'Step 3: "test" can only be the first'),
        (["everyone", "test", "everyone"], 'Step 1: "everyone" can only be the last'),
        (["test", 5, 5, "everyone"], "Step 3: 5 does not rise"),
    ],
)
def test_rollout_start__step_never_applied_or_taking_exposure_back__refused_naming_it(
    setup, steps, named
):
    """A guarded rollout only widens exposure, by steps a flag can hold; anything else is
    refused up front with nothing started, not found stuck at a step later."""
    env, admin, flag = setup
    with pytest.raises(ValidationError, match=named):
        rollout_start(environment=env, flag=flag, actor=admin, steps=steps)
    assert not Rollout.objects.exists()
    assert Flag.objects.get(pk=flag.pk).test_cohort is False


@pytest.mark.django_db
def test_rollout__one_decimal_step__applied_when_the_oracle_passes(setup):
    env, admin, flag = setup
    rollout = rollout_start(
        environment=env, flag=flag, actor=admin, steps=["test", 2.5, "everyone"], step_minutes=10
    )
    traffic(env, count=300, errors=0, at=rollout.step_started_at + timedelta(minutes=1))
    now = rollout.step_started_at + timedelta(minutes=11)
    assert rollout_advance(environment=env, rollout=rollout, now=now) == "advanced"
    flag.refresh_from_db()
    assert float(flag.percent) == 2.5


@pytest.mark.django_db
def test_rollout_advance__two_tasks_judged_the_same_step__the_second_changes_nothing(setup):
    env, admin, flag = setup
    rollout = rollout_start(
        environment=env, flag=flag, actor=admin, steps=["test", 5, "everyone"], step_minutes=10
    )
    traffic(env, count=300, errors=0, at=rollout.step_started_at + timedelta(minutes=1))
    now = rollout.step_started_at + timedelta(minutes=11)
    first, second = Rollout.objects.get(pk=rollout.pk), Rollout.objects.get(pk=rollout.pk)
    assert rollout_advance(environment=env, rollout=first, now=now) == "advanced"
    # The duplicate's verdict was about the test cohort, not the 5% step just started.
    assert rollout_advance(environment=env, rollout=second, now=now) == "stale"
    rollout.refresh_from_db()
    flag.refresh_from_db()
    assert (rollout.step_index, len(rollout.history)) == (1, 1)
    assert (float(flag.percent), flag.everyone) == (5.0, None)


@pytest.mark.django_db
def test_rollout_advance__flag_killed_while_judging__the_flag_stays_as_killed(setup):
    env, admin, flag = setup
    rollout = rollout_start(
        environment=env, flag=flag, actor=admin, steps=["test", 5, "everyone"], step_minutes=10
    )
    traffic(env, count=300, errors=0, at=rollout.step_started_at + timedelta(minutes=1))
    now = rollout.step_started_at + timedelta(minutes=11)
    loaded = Rollout.objects.get(pk=rollout.pk)
    flag_kill(environment=env, flag=flag, actor=admin, reason="complaints")
    assert rollout_advance(environment=env, rollout=loaded, now=now) == "cancelled"
    # A kill that has not reached the rollout row yet stops it as well.
    Rollout.objects.filter(pk=rollout.pk).update(status=Rollout.Status.RUNNING)
    assert rollout_advance(environment=env, rollout=loaded, now=now) == "stale"
    rollout.refresh_from_db()
    flag.refresh_from_db()
    assert rollout.step_index == 0
    assert [h.get("killed") for h in rollout.history] == ["complaints"]  # no verdict recorded
    assert (flag.killed, flag.percent, flag.everyone) == (True, None, None)


@pytest.mark.django_db
def test_rollout__too_few_requests__waits_inconclusive(setup):
    env, admin, flag = setup
    rollout = rollout_start(environment=env, flag=flag, actor=admin, step_minutes=1)
    traffic(env, count=20, errors=0, at=rollout.step_started_at)
    now = rollout.step_started_at + timedelta(minutes=2)
    assert rollout_advance(environment=env, rollout=rollout, now=now) == "inconclusive"
    rollout.refresh_from_db()
    assert (rollout.status, rollout.step_index) == ("running", 0)


@pytest.mark.django_db
def test_rollout__oracle_fails__kills_the_flag_and_alerts_staff(
    setup, django_capture_on_commit_callbacks
):
    env, admin, flag = setup
    rollout = rollout_start(environment=env, flag=flag, actor=admin, step_minutes=1)
    traffic(env, count=200, errors=30, at=rollout.step_started_at)
    now = rollout.step_started_at + timedelta(minutes=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert rollout_advance(environment=env, rollout=rollout, now=now) == "failed"
    flag.refresh_from_db()
    rollout.refresh_from_db()
    assert flag.killed is True
    assert rollout.status == Rollout.Status.FAILED
    *_, verdict, alert = rollout.history
    assert verdict["verdict"] == "fail"
    assert (alert["alert"], alert["tries"], alert["to"]) == ("sent", 1, ["admin@cu.example"])
    assert len(mail.outbox) == 1
    assert "admin@cu.example" in mail.outbox[0].to
    assert "30 of 200" in mail.outbox[0].body


@pytest.mark.django_db
def test_rollout__oracle_fails_while_the_mail_server_is_down__staff_told_once_it_is_back(
    setup, settings, django_capture_on_commit_callbacks
):
    """A guarded rollout fails the oracle while the SMTP server is unreachable: the flag is
    killed and the rollout marked failed, but the alert to the admins is sent inline from
    an on_commit hook, raises, and is never tried again (the task has no retry for it and
    the next ticks see a finished rollout). Staff are never told their flag was killed.
    The alert must survive the outage and go out once the mail server answers."""
    env, admin, flag = setup
    rollout = rollout_start(environment=env, flag=flag, actor=admin, step_minutes=1)
    started = timezone.now() - timedelta(minutes=3)
    Rollout.objects.filter(pk=rollout.pk).update(step_started_at=started)
    traffic(env, count=200, errors=30, at=started + timedelta(minutes=1))
    smtp_at(settings, free_port(), timeout=2)  # nothing listens there: connection refused
    # Eager tasks raise the retry they ask for; a worker would run it after its countdown.
    with pytest.raises(Retry) as retry, django_capture_on_commit_callbacks(execute=True):
        rollout_advance_task.delay(env.pk, rollout.pk)  # what the worker runs
    rollout.refresh_from_db()
    flag.refresh_from_db()
    assert (rollout.status, flag.killed) == (Rollout.Status.FAILED, True)
    alert = rollout.history[-1]  # what the admin shows
    assert (alert["alert"], alert["tries"]) == ("failed", 1)
    assert "ConnectionRefusedError" in alert["error"]
    assert isinstance(retry.value.exc, ConnectionRefusedError)

    sink = SMTPSink()
    sink.controller.start()
    try:
        smtp_at(settings, sink.port, timeout=2)  # the mail server is back
        assert rollouts_tick() == 0  # the next ticks see a finished rollout
        retry.value.sig.apply()  # the worker runs the retry
        retry.value.sig.apply()  # and, redelivered, once more
    finally:
        sink.controller.stop()
    (message,) = sink.to("admin@cu.example")
    assert "dashboard_equity_widget killed" in message["Subject"]
    rollout.refresh_from_db()
    assert (rollout.history[-1]["alert"], rollout.history[-1]["tries"]) == ("sent", 2)


@pytest.mark.django_db
def test_rollout__beat_tick__advances_running_rollouts_in_their_environment(setup):
    env, admin, flag = setup
    rollout = rollout_start(
        environment=env, flag=flag, actor=admin, steps=["test", "everyone"], step_minutes=0
    )
    traffic(env, count=150, errors=0, at=timezone.now())
    assert rollouts_tick.delay().get() == 1
    rollout.refresh_from_db()
    assert rollout.step_index == 1
    assert Flag.objects.get(pk=flag.pk).everyone is True


@pytest.mark.django_db
def test_rollout_start__bad_steps_or_killed_flag__is_refused(setup):
    env, admin, flag = setup
    for steps in ([], ["test", 50, 5, "everyone"], ["test", "x"], ["test", 5]):
        with pytest.raises(ValidationError):
            rollout_start(environment=env, flag=flag, actor=admin, steps=steps)
    # Not percentages, though Decimal takes them (NaN cannot even be compared) and True == 1.
    for step in (float("nan"), float("inf"), "-Infinity", True):
        with pytest.raises(ValidationError, match=f"{step!r} is not test"):
            rollout_start(environment=env, flag=flag, actor=admin, steps=["test", step, "everyone"])
    assert not Rollout.objects.exists()
    Flag.objects.filter(pk=flag.pk).update(killed=True)
    flag.refresh_from_db()
    with pytest.raises(ValidationError, match="killed"):
        rollout_start(environment=env, flag=flag, actor=admin)
