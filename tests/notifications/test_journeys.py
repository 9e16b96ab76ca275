"""Journeys end to end: member events enter members, the beat task advances them step by
step (time moved by making the stored next run due, or with an explicit `now=`), and exit
conditions stop them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from homes.models import Member
from institutions import events
from institutions.tenancy import environment_scope
from notifications import tasks, tokens
from notifications.models import ConsentRecord, Delivery, Journey, JourneyProgress
from notifications.services import preference_set
from notifications.services.journeys import journeys_advance
from tests.notifications.factories import JourneyFactory
from tests.notifications.helpers import deliveries, members

pytestmark = pytest.mark.django_db

SAVED_NOT_SELECTED = [
    {"type": "wait", "days": 2},
    {"type": "send", "template": "offer_summary", "channel": "email"},
    {"type": "wait", "days": 5},
    {"type": "condition", "check": "opened_last", "otherwise": "exit"},
    {"type": "send", "template": "home_value", "channel": "email"},
]


def progress_of(environment, member) -> JourneyProgress:
    with environment_scope(environment):
        return JourneyProgress.objects.get(member=member)


def make_due(environment, member) -> None:
    """Time passes: the member's next step is due now."""
    with environment_scope(environment):
        JourneyProgress.objects.filter(member=member).update(
            next_run_at=timezone.now() - timedelta(seconds=1)
        )


def beat(capture) -> dict:
    """The beat task, called directly; sends run (eagerly) after its transaction commits."""
    with capture(execute=True):
        return tasks.journeys()


def journey(environment, **kwargs) -> Journey:
    spec = {
        "trigger": Journey.Trigger.OFFER_SAVED,
        "steps": SAVED_NOT_SELECTED,
        "exit_conditions": ["offer_selected", "unsubscribed", "opted_out"],
        **kwargs,
    }
    return JourneyFactory(environment=environment, **spec)


def test_journey__offer_saved__waits_sends_checks_the_open_and_completes(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    flow = journey(env)
    (member,) = members(env, 1, email="ada@example.test", first_name="Ada")
    events.emit(environment=env, name="offer_saved", member=member, properties={"offer": 7})
    progress = progress_of(env, member)
    assert (progress.state, progress.step_index, progress.journey_id) == ("active", 0, flow.pk)

    beat(django_capture_on_commit_callbacks)  # the first wait starts
    progress = progress_of(env, member)
    assert progress.step_index == 1
    assert progress.next_run_at > timezone.now() + timedelta(days=1, hours=23)
    beat(django_capture_on_commit_callbacks)  # not due yet: nothing happens
    assert progress_of(env, member).step_index == 1
    assert mail.outbox == []

    make_due(env, member)
    beat(django_capture_on_commit_callbacks)  # send, then the five-day wait
    progress = progress_of(env, member)
    assert progress.step_index == 3
    assert progress.next_run_at > timezone.now() + timedelta(days=4, hours=23)
    (first,) = mail.outbox
    assert first.to == ["ada@example.test"]
    assert first.subject == "Your offer this month: Home equity line of credit"
    (sent,) = deliveries(env, campaign_key=f"journey:{flow.pk}:1")
    assert sent.state == Delivery.State.SENT

    # The member opens it (the signed pixel), so the condition holds.
    token = tokens.track_token(environment_id=env.pk, delivery_id=sent.pk)
    assert Client(HTTP_HOST=env.host).get(f"/notifications/o/{token}.gif").status_code == 200

    make_due(env, member)
    beat(django_capture_on_commit_callbacks)
    progress = progress_of(env, member)
    assert progress.state == JourneyProgress.State.COMPLETED
    assert progress.step_index == len(SAVED_NOT_SELECTED)
    assert len(mail.outbox) == 2
    assert [d.state for d in deliveries(env, campaign_key=f"journey:{flow.pk}:4")] == ["sent"]
    assert [h.get("type") for h in progress.history] == [
        "wait",
        "send",
        "wait",
        "condition",
        "send",
    ]
    assert progress.history[3]["passed"] is True

    beat(django_capture_on_commit_callbacks)  # completed: never sent again
    assert len(mail.outbox) == 2


def test_journey__condition_not_met__exits_with_the_reason_and_sends_no_more(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    flow = journey(env)
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_saved", member=member)
    with environment_scope(env):
        start = timezone.now()
        # Time moved with explicit clocks: two days, then five more.
        journeys_advance(environment=env, now=start)
        assert journeys_advance(environment=env, now=start + timedelta(days=1)) == 0
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        assert journeys_advance(environment=env, now=start + timedelta(days=2, minutes=1)) == 1
        assert journeys_advance(environment=env, now=start + timedelta(days=7, minutes=2)) == 1
    progress = progress_of(env, member)
    assert progress.state == JourneyProgress.State.EXITED
    assert progress.exit_reason == "condition opened_last not met"
    assert len(mail.outbox) == 1
    assert deliveries(env, campaign_key=f"journey:{flow.pk}:4") == []


def test_journey__condition_otherwise_skip__skips_the_next_step_only(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    steps = [
        {"type": "condition", "check": "has_push", "otherwise": "skip"},
        {"type": "send", "template": "offer_summary", "channel": "push"},
        {"type": "send", "template": "home_value", "channel": "email"},
    ]
    flow = journey(env, steps=steps)
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_saved", member=member)
    beat(django_capture_on_commit_callbacks)
    progress = progress_of(env, member)
    assert progress.state == JourneyProgress.State.COMPLETED
    assert deliveries(env, campaign_key=f"journey:{flow.pk}:1") == []
    assert [d.state for d in deliveries(env, campaign_key=f"journey:{flow.pk}:2")] == ["sent"]
    assert mail.outbox[0].subject.startswith("Your home")


def test_journey__offer_selected_event__exits_before_the_next_send(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    journey(env)
    (member, other) = members(env, 2)
    for person in (member, other):
        events.emit(environment=env, name="offer_saved", member=person)
    beat(django_capture_on_commit_callbacks)
    events.emit(environment=env, name="offer_selected", member=member, properties={"offer": 7})
    progress = progress_of(env, member)
    assert (progress.state, progress.exit_reason) == ("exited", "offer_selected")
    make_due(env, member)
    make_due(env, other)
    beat(django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [[other.email]]
    assert progress_of(env, member).step_index == 1


def test_journey__opted_out_event_or_email_unsubscribe__exit(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    journey(env)
    (leaver, unsubscriber) = members(env, 2)
    for person in (leaver, unsubscriber):
        events.emit(environment=env, name="offer_saved", member=person)
    events.emit(environment=env, name="member_opted_out", member=leaver)
    assert progress_of(env, leaver).exit_reason == "opted_out"

    with environment_scope(env):
        preference_set(
            environment=env,
            member=unsubscriber,
            category="offers",
            channel="email",
            enabled=False,
            method=ConsentRecord.Method.PREFERENCES,
        )
    beat(django_capture_on_commit_callbacks)
    progress = progress_of(env, unsubscriber)
    assert (progress.state, progress.exit_reason) == ("exited", "unsubscribed")
    assert mail.outbox == []


def test_journey__value_changed__enters_only_at_or_above_its_threshold(tenant):
    env = tenant.production
    journey(env, trigger=Journey.Trigger.VALUE_CHANGED, threshold_pct="5.00")
    small, large, drop = members(env, 3)
    events.emit(environment=env, name="home_value_changed", member=small, properties={})
    events.emit(
        environment=env, name="home_value_changed", member=small, properties={"change_pct": 4.9}
    )
    events.emit(
        environment=env, name="home_value_changed", member=large, properties={"change_pct": "5.0"}
    )
    events.emit(
        environment=env, name="home_value_changed", member=drop, properties={"change_pct": -7.25}
    )
    with environment_scope(env):
        entered = set(JourneyProgress.objects.values_list("member_id", flat=True))
    assert entered == {large.pk, drop.pk}


def test_journey__offer_matched_twice__entered_once__inactive_journeys_never(tenant):
    env = tenant.production
    active = journey(env, trigger=Journey.Trigger.OFFER_MATCHED)
    journey(env, trigger=Journey.Trigger.OFFER_MATCHED, active=False)
    journey(env, trigger=Journey.Trigger.OFFER_SAVED)
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_matched", member=member)
    events.emit(environment=env, name="offer_matched", member=member)
    events.emit(environment=env, name="offer_viewed", member=member)  # not a trigger
    with environment_scope(env):
        rows = list(JourneyProgress.objects.all())
    assert [(r.journey_id, r.member_id) for r in rows] == [(active.pk, member.pk)]


def test_member_enrolled__enters_its_journey_and_schedules_the_welcome_series(tenant):
    env = tenant.production
    flow = journey(env, trigger=Journey.Trigger.ENROLLED, exit_conditions=[])
    (member,) = members(env, 1, enrollment=Member.Enrollment.ENROLLED)
    before = timezone.now()
    events.emit(environment=env, name="member_enrolled", member=member)
    assert progress_of(env, member).journey_id == flow.pk
    welcome = deliveries(env, campaign_key__startswith="welcome_")
    assert sorted(d.campaign_key for d in welcome) == ["welcome_1", "welcome_3", "welcome_5"]
    for row in welcome:
        day = int(row.campaign_key.split("_")[1])
        assert row.state == Delivery.State.PENDING
        assert row.dispatched_at is None  # not due: the sweeper sends it on its day
        assert before + timedelta(days=day) <= row.scheduled_at
        assert row.scheduled_at <= timezone.now() + timedelta(days=day)


def test_journey__missing_template__exits_visibly_and_others_continue(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    broken = journey(
        env, steps=[{"type": "send", "template": "no-such-template", "channel": "email"}]
    )
    working = journey(env, steps=[{"type": "send", "template": "home_value", "channel": "email"}])
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_saved", member=member)
    beat(django_capture_on_commit_callbacks)
    with environment_scope(env):
        rows = {p.journey_id: p for p in JourneyProgress.objects.all()}
    assert rows[broken.pk].state == "exited"
    assert "no-such-template" in rows[broken.pk].exit_reason
    assert rows[working.pk].state == "completed"
    assert len(mail.outbox) == 1


def test_journey__other_tenants_progress__untouched_by_events_here(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    journey(tenant.production)
    theirs = journey(other_tenant.production)
    (member,) = members(tenant.production, 1)
    events.emit(environment=tenant.production, name="offer_saved", member=member)
    with environment_scope(other_tenant.production):
        assert not JourneyProgress.objects.filter(journey=theirs).exists()


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"type": "wait", "days": 1, "hours": "12"}, "hours"),
        ({"type": "wait", "days": -1, "hours": 2}, "days"),
        ({"type": "wait", "days": 1.5}, "days"),
        ({"type": "wait", "hours": True}, "hours"),
        ({"type": "wait", "days": 0, "hours": 0}, "positive"),
        ({"type": "wait"}, "positive"),
    ],
)
def test_journey_steps_validate__wait_with_a_bad_unit__refused_naming_the_step(step, problem):
    from django.core.exceptions import ValidationError

    from notifications.services.journeys import journey_steps_validate

    steps = [{"type": "send", "template": "home_value", "channel": "email"}, step]
    with pytest.raises(ValidationError) as refused:
        journey_steps_validate(steps, [])
    (message,) = refused.value.message_dict["steps"]
    assert message.startswith("step 2:")
    assert problem in message
    journey_steps_validate([{"type": "wait", "days": 1, "hours": 0}], [])  # zero hours is fine


def test_journeys_advance__a_step_that_fails__exits_that_member_visibly__others_advance(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    # Saved before validation refused it (or written around it): the hours are text.
    broken = journey(env, steps=[{"type": "wait", "days": 1, "hours": "12"}], exit_conditions=[])
    working = journey(env, steps=[{"type": "wait", "days": 1}], exit_conditions=[])
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_saved", member=member)
    beat(django_capture_on_commit_callbacks)
    with environment_scope(env):
        rows = {p.journey_id: p for p in JourneyProgress.objects.all()}
    assert rows[broken.pk].state == JourneyProgress.State.EXITED
    assert rows[broken.pk].exit_reason.startswith("step 1 failed: TypeError")
    assert rows[broken.pk].history[-1]["exit"] == rows[broken.pk].exit_reason
    assert (rows[working.pk].state, rows[working.pk].step_index) == ("active", 1)


def test_beat__a_failing_environment__others_still_advance__task_fails_at_the_end(
    tenant, other_tenant, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    import notifications.services.journeys as journeys_module
    from institutions.tenancy import EnvironmentsFailed

    real = journeys_module.journeys_advance

    def advance(*, environment, **kwargs):
        if environment == tenant.production:
            raise RuntimeError("the journeys of this environment are broken")
        return real(environment=environment, **kwargs)

    monkeypatch.setattr(journeys_module, "journeys_advance", advance)
    theirs = journey(other_tenant.production, steps=[{"type": "wait", "days": 1}])
    (member,) = members(other_tenant.production, 1)
    events.emit(environment=other_tenant.production, name="offer_saved", member=member)
    with pytest.raises(EnvironmentsFailed) as failed:
        beat(django_capture_on_commit_callbacks)
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert str(tenant.production) in str(failed.value)
    assert progress_of(other_tenant.production, member).journey_id == theirs.pk
    assert progress_of(other_tenant.production, member).step_index == 1
    assert any(str(tenant.production) in r.getMessage() for r in caplog.records)


def test_journey__push_step__member_without_a_subscription__suppressed_push_row_no_email(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    flow = journey(
        env,
        steps=[{"type": "send", "template": "offer_summary", "channel": "push"}],
        exit_conditions=[],
    )
    (member,) = members(env, 1)
    events.emit(environment=env, name="offer_saved", member=member)
    beat(django_capture_on_commit_callbacks)
    rows = deliveries(env, campaign_key=f"journey:{flow.pk}:0")
    assert [(r.channel, r.state, r.reason) for r in rows] == [
        ("push", "suppressed", "no push subscription")
    ]
    assert mail.outbox == []
    assert progress_of(env, member).state == JourneyProgress.State.COMPLETED
