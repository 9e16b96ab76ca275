"""The post-deploy watch: the oracle's verdict settles it; fail alerts and may roll back."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.exceptions import ValidationError

from flags.models import RequestMetric
from institutions.selectors import environment_branding
from institutions.tenancy import environment_scope
from releases.models import Release
from releases.services import (
    ReleaseRefused,
    policy_for,
    release_deploy,
    release_rollback,
    release_watch_check,
    release_watch_decide,
)
from releases.tasks import watch_due
from tests.notifications.conftest import SMTPSink, free_port, smtp_at
from tests.releases.test_release_flow import TUESDAY_23, approved


@pytest.fixture
def deployed(tenant, people, clock, django_capture_on_commit_callbacks):
    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    with django_capture_on_commit_callbacks(execute=True):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    return release


@pytest.mark.django_db
def test_watch__fail_with_auto_rollback__production_returns_and_signers_are_told(
    tenant, people, clock, oracle, deployed, django_capture_on_commit_callbacks
):
    policy = policy_for(tenant.institution)
    policy.auto_rollback = True
    policy.save()
    oracle.rate, oracle.sample = 0.12, 400
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert watch_due() == 1
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.FAILED
    assert deployed.state == Release.State.ROLLED_BACK
    assert deployed.watch_verdict["results"][0]["sample"] == 400
    assert environment_branding(tenant.production).primary_color == "#1f4e79"
    (message,) = mail.outbox
    assert set(message.to) == {
        "ivan@cu.test",
        "lena@cu.test",
        "mo@cu.test",
        "mara@cu.test",
    }
    assert "48 of 400 requests were 5xx" in message.body
    assert "rolled back" in message.body
    environment, rules, start, end = oracle.calls[0]
    assert environment == tenant.production
    assert end == TUESDAY_23 + dt.timedelta(minutes=5)
    assert start == deployed.deployed_at
    assert {r.metric for r in rules} == {
        "http_5xx_rate",
        "delivery_failure_rate",
        "http_p95_latency_ms",
    }


@pytest.mark.django_db
def test_watch__fail_without_auto_rollback__alerts_and_keeps_production(
    tenant, clock, oracle, deployed, django_capture_on_commit_callbacks
):
    policy = policy_for(tenant.institution)
    policy.auto_rollback = False  # turned off by the institution (it is on by default)
    policy.save()
    oracle.rate, oracle.sample = 0.06, 150
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.FAILED
    assert deployed.state == Release.State.DEPLOYED
    assert "Automatic rollback is off" in mail.outbox[0].body


@pytest.mark.django_db
def test_watch__few_requests__keeps_watching_then_asks_a_person(
    tenant, people, clock, oracle, deployed, django_capture_on_commit_callbacks
):
    oracle.rate, oracle.sample = 0.5, 20  # alarming, but too few requests to judge
    clock.set(TUESDAY_23 + dt.timedelta(minutes=10))
    release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.WATCHING
    clock.set(TUESDAY_23 + dt.timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.NEEDS_DECISION
    assert len(deployed.watch_history) == 2
    assert "ada@cu.test" in mail.outbox[0].to
    with pytest.raises(ReleaseRefused, match="comment is required"):
        release_watch_decide(
            environment=tenant.staging, release=deployed, keep=True, comment="", actor=people.it
        )
    release_watch_decide(
        environment=tenant.staging,
        release=deployed,
        keep=True,
        comment="Traffic is low at night; pages checked by hand.",
        actor=people.it,
    )
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.ACCEPTED


@pytest.mark.django_db
def test_watch__pass__settles_at_the_end_of_the_period(tenant, clock, oracle, deployed):
    oracle.rate, oracle.sample = 0.001, 5000
    clock.set(TUESDAY_23 + dt.timedelta(minutes=30))
    release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.WATCHING
    clock.set(TUESDAY_23 + dt.timedelta(minutes=60))
    release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.PASSED
    assert deployed.watch_verdict["verdict"] == "pass"


@pytest.fixture
def auto_rollback(tenant):
    policy = policy_for(tenant.institution)
    policy.auto_rollback = True
    policy.save()
    return policy


@pytest.mark.django_db
def test_watch__rolled_back_by_hand_while_watching__the_watch_ends(
    tenant, people, clock, oracle, auto_rollback, deployed, django_capture_on_commit_callbacks
):
    clock.set(TUESDAY_23 + dt.timedelta(minutes=3))
    deployed.refresh_from_db()
    release_rollback(
        environment=tenant.staging, release=deployed, actor=people.it, reason="5xx spike seen"
    )
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.ENDED
    oracle.rate, oracle.sample = 0.12, 400
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert watch_due() == 0
        release_watch_check(environment=tenant.staging, release=deployed)  # a late tick
    deployed.refresh_from_db()
    assert (deployed.state, deployed.watch_state) == (
        Release.State.ROLLED_BACK,
        Release.Watch.ENDED,
    )
    assert mail.outbox == []


@pytest.mark.django_db
def test_watch__fail_after_a_later_release__alerts_and_records_why_it_did_not_roll_back(
    tenant, people, clock, oracle, auto_rollback, deployed, django_capture_on_commit_callbacks
):
    later = approved(tenant, people, accent_color="#aa0000")
    clock.set(TUESDAY_23 + dt.timedelta(minutes=2))
    release_deploy(environment=tenant.staging, release=later, actor=people.it)
    oracle.rate, oracle.sample = 0.12, 400
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    deployed.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        release_watch_check(environment=tenant.staging, release=deployed)  # does not raise
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.FAILED
    assert deployed.state == Release.State.DEPLOYED
    assert deployed.last_error.startswith("Automatic rollback did not happen")
    assert f"Release #{later.number} was deployed after" in deployed.last_error
    (message,) = mail.outbox
    assert "failed its watch" in message.subject
    assert "Automatic rollback did not happen" in message.body
    assert environment_branding(tenant.production).accent_color == "#aa0000"
    assert watch_due() == 1  # the later release only


@pytest.mark.django_db
def test_watch__fail_after_an_emergency_change__auto_rollback_stops_with_the_conflict(
    tenant, people, clock, oracle, auto_rollback, deployed, django_capture_on_commit_callbacks
):
    from institutions.services import branding_update

    branding_update(
        environment=tenant.production, actor=people.admin, footer_text="Rates fixed by hand"
    )
    oracle.rate, oracle.sample = 0.12, 400
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        release_watch_check(environment=tenant.staging, release=deployed)
    deployed.refresh_from_db()
    assert (deployed.state, deployed.watch_state) == (
        Release.State.DEPLOYED,
        Release.Watch.FAILED,
    )
    assert [f["field"] for f in deployed.conflict[0]["fields"]] == ["footer_text"]
    assert "production changed after it was deployed" in deployed.last_error
    assert "production changed after it was deployed" in mail.outbox[0].body
    branding = environment_branding(tenant.production)
    assert (branding.footer_text, branding.primary_color) == ("Rates fixed by hand", "#00aa00")


@pytest.mark.django_db
def test_watch__fail_while_the_mail_server_is_down__signers_told_once_it_is_back(
    tenant, clock, oracle, deployed, settings, django_capture_on_commit_callbacks
):
    """Scenario 3: a release fails its watch and the signers "are told why". When the SMTP
    server is down at that minute, the alert (sent inline on commit) raises and is gone:
    the release is settled as failed, later watch ticks skip it, and nobody is told. The
    alert must go out once the mail server answers again."""
    oracle.rate, oracle.sample = 0.12, 400
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    smtp_at(settings, free_port(), timeout=2)  # nothing listens there: connection refused
    # Eager tasks raise the retry they ask for; a worker would run it after its countdown.
    with pytest.raises(Retry) as retry, django_capture_on_commit_callbacks(execute=True):
        watch_due()
    deployed.refresh_from_db()
    assert deployed.watch_state == Release.Watch.FAILED

    sink = SMTPSink()
    sink.controller.start()
    try:
        smtp_at(settings, sink.port, timeout=2)  # the mail server is back
        for minute in (6, 7):  # the next beat ticks skip the settled release
            clock.set(TUESDAY_23 + dt.timedelta(minutes=minute))
            with django_capture_on_commit_callbacks(execute=True):
                assert watch_due() == 0
        retry.value.sig.apply()  # the worker runs the retry
    finally:
        sink.controller.stop()
    (message,) = sink.to("ivan@cu.test")
    assert "failed its watch" in message["Subject"]


def _requests(environment, minute, cohort, count, errors):
    """One minute of production request counters for a cohort (all fast)."""
    with environment_scope(environment):
        RequestMetric.objects.create(
            environment=environment,
            minute=minute,
            cohort=cohort,
            count=count,
            errors=errors,
            latency_ms_sum=50.0 * count,
            le_50=count,
        )


def _deployed_at(tenant, people, clock, capture, at=TUESDAY_23) -> Release:
    release = approved(tenant, people)
    clock.set(at)
    with capture(execute=True):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    release.refresh_from_db()
    return release


def _watch_at(tenant, release, clock, capture, moment) -> Release:
    clock.set(moment)
    with capture(execute=True):
        release_watch_check(environment=tenant.staging, release=release)
    release.refresh_from_db()
    return release


@pytest.mark.django_db
def test_watch__rule_without_min_sample__one_failed_request_does_not_roll_back(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    # A rule may leave min_sample out (the policy's own example does); it takes the
    # oracle's default of 100, not 0: one request answering 500 is no 100% error rate.
    policy = policy_for(tenant.institution)
    policy.watch_rules = [
        {"metric": "http_5xx_rate", "pass_threshold": 0.01, "fail_threshold": 0.05}
    ]
    policy.full_clean()
    policy.save()
    release = _deployed_at(tenant, people, clock, django_capture_on_commit_callbacks)
    _requests(tenant.production, TUESDAY_23 + dt.timedelta(minutes=1), "member", 1, 1)
    release = _watch_at(
        tenant,
        release,
        clock,
        django_capture_on_commit_callbacks,
        TUESDAY_23 + dt.timedelta(minutes=2),
    )
    assert release.watch_verdict["verdict"] == "inconclusive", release.watch_verdict
    assert release.watch_verdict["results"][0]["min_sample"] == 100
    assert release.state == Release.State.DEPLOYED


@pytest.mark.django_db
def test_watch__default_policy__test_member_traffic_alone_does_not_roll_back(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    # Staff testing a broken variant in production as test members (12.5% of all requests
    # fail, all of them theirs) must not roll production back for every member.
    release = _deployed_at(tenant, people, clock, django_capture_on_commit_callbacks)
    minute = TUESDAY_23 + dt.timedelta(minutes=1)
    _requests(tenant.production, minute, "member", 400, 0)
    _requests(tenant.production, minute, "test", 400, 100)
    release = _watch_at(
        tenant,
        release,
        clock,
        django_capture_on_commit_callbacks,
        TUESDAY_23 + dt.timedelta(minutes=2),
    )
    assert release.watch_state != Release.Watch.FAILED, release.watch_verdict
    assert release.state == Release.State.DEPLOYED
    five_xx = release.watch_verdict["results"][0]
    assert (five_xx["metric"], five_xx["cohort"], five_xx["sample"]) == (
        "http_5xx_rate",
        "non_test",
        400,
    )


@pytest.mark.django_db
def test_watch__stored_rule_with_cohort_all__still_judges_test_members(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    # A policy that asked for every request keeps it: only a rule without a cohort changed.
    policy = policy_for(tenant.institution)
    policy.watch_rules = [
        {
            "metric": "http_5xx_rate",
            "pass_threshold": 0.01,
            "fail_threshold": 0.05,
            "min_sample": 100,
            "cohort": "all",
        }
    ]
    policy.save()
    release = _deployed_at(tenant, people, clock, django_capture_on_commit_callbacks)
    minute = TUESDAY_23 + dt.timedelta(minutes=1)
    _requests(tenant.production, minute, "member", 400, 0)
    _requests(tenant.production, minute, "test", 400, 100)
    release = _watch_at(
        tenant,
        release,
        clock,
        django_capture_on_commit_callbacks,
        TUESDAY_23 + dt.timedelta(minutes=2),
    )
    assert release.watch_state == Release.Watch.FAILED, release.watch_verdict


@pytest.mark.django_db
def test_watch__errors_in_the_minute_before_the_deploy__are_not_blamed_on_the_release(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    # Counters are per minute: a deploy at 23:00:40 is judged from the 23:01 bucket on, as
    # 40 seconds of the 23:00 one were served by the configuration it replaced.
    deploy_at = TUESDAY_23 + dt.timedelta(seconds=40)
    release = _deployed_at(tenant, people, clock, django_capture_on_commit_callbacks, at=deploy_at)
    _requests(tenant.production, TUESDAY_23, "member", 400, 48)  # the 23:00 bucket
    release = _watch_at(
        tenant,
        release,
        clock,
        django_capture_on_commit_callbacks,
        TUESDAY_23 + dt.timedelta(minutes=2),
    )
    assert release.watch_state != Release.Watch.FAILED, release.watch_verdict
    assert release.state == Release.State.DEPLOYED
    assert release.watch_verdict["results"][0]["sample"] == 0


@pytest.mark.django_db
def test_release_policy__rate_rule_with_a_threshold_above_one__is_refused(tenant):
    # http_5xx_rate is a share: 5 meant as 5% is a rule that can never fail.
    policy = policy_for(tenant.institution)
    policy.watch_rules = [
        {"metric": "http_5xx_rate", "pass_threshold": 1, "fail_threshold": 5, "min_sample": 100}
    ]
    with pytest.raises(ValidationError) as refused:
        policy.full_clean()
    (message,) = refused.value.message_dict["watch_rules"]
    assert "fail_threshold 5 out of range" in message, message
    assert "share from 0 to 1 (e.g. 0.05 for 5%)" in message, message
    policy.watch_rules[0].update(pass_threshold=0.01, fail_threshold=1)  # 100%: reachable
    policy.full_clean()


def test_release_policy__delivery_failure_rate_is_a_share_too(tenant):
    policy = policy_for(tenant.institution)
    policy.watch_rules = [
        {
            "metric": "delivery_failure_rate",
            "pass_threshold": 0.5,
            "fail_threshold": 5,
            "min_sample": 100,
        }
    ]
    with pytest.raises(ValidationError) as refused:
        policy.full_clean()
    (message,) = refused.value.message_dict["watch_rules"]
    assert "delivery_failure_rate is a share from 0 to 1" in message, message
