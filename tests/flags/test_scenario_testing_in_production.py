"""Scenario 4: a widget behind a flag for the test cohort, kept out of analytics, rolled out."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client

from flags.demo import demo_flags
from flags.models import Destination, Event, Flag, RequestMetric
from flags.services import destinations as dest
from flags.services.rollouts import rollout_advance, rollout_start
from homes.services import member_visit_link_build
from institutions import events
from institutions.demo import DemoReport
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory, staff_user
from tests.flags.factories import FlagFactory
from tests.flags.test_destinations import Receiver, later

PAGE = "/flagged/?flags=dashboard_equity_widget"


@pytest.mark.django_db
def test_scenario__widget_for_test_cohort__seen_recorded_filtered_and_rolled_out(tenant, settings):
    settings.TENANT_URLCONF = "tests.flags.pages"
    env = tenant.production
    demo_flags(tenant.institution, DemoReport())
    demo_flags(tenant.institution, DemoReport())  # idempotent
    with environment_scope(env):
        flag = Flag.objects.get(name="dashboard_equity_widget")
    tester = MemberFactory(environment=env, is_test=True)
    reals = [MemberFactory(environment=env) for _ in range(3)]
    assert b"class='on'" in member_client(tester).get(PAGE).content
    for real in reals:  # any device: a fresh client each time, same answer
        for _ in range(2):
            assert b"class='off'" in member_client(real).get(PAGE).content
    for member in (tester, *reals):
        events.emit(
            environment=env,
            name="offer_selected",
            member=member,
            properties={"offer_id": 1, "offer_kind": "heloc"},
        )
    with environment_scope(env):
        impressions = Event.objects.filter(name="flag_impression")
        assert impressions.filter(is_test=True, properties__variant="on").count() == 1
        assert impressions.filter(is_test=False, properties__variant="off").count() == 3
        with Receiver() as receiver:
            webhook = Destination.objects.get(name="analytics webhook")
            webhook.url, webhook.enabled = receiver.url, True
            webhook.save()
            dest.destinations_forward(environment=env, now=later())
        received = receiver.events()
        assert received
        assert tester.pk not in {e["member_id"] for e in received}
        # The guarded rollout: 5%, then everyone, as the oracle passes each step.
        admin = staff_user(tenant.institution, "admin")
        rollout = rollout_start(
            environment=env, flag=flag, actor=admin, steps=[5, "everyone"], step_minutes=5
        )
        for expected in ("advanced", "completed"):
            rollout.refresh_from_db()
            RequestMetric.objects.create(
                environment=env,
                minute=(rollout.step_started_at + timedelta(minutes=1)).replace(
                    second=0, microsecond=0
                ),
                cohort="member",
                count=500,
                errors=1,
                le_100=500,
            )
            now = rollout.step_started_at + timedelta(minutes=6)
            assert rollout_advance(environment=env, rollout=rollout, now=now) == expected
    assert b"class='on'" in member_client(reals[0]).get(PAGE).content


@pytest.mark.django_db
def test_staff_visit_as_a_test_member__widget_shown__impression_recorded_with_is_test(
    tenant, settings
):
    """In production staff may visit only as a test member, and what they do there is the
    test member's test activity: the widget they see behind the test-cohort flag leaves its
    impression, recorded with is_test (so analytics destinations leave it out)."""
    settings.TENANT_URLCONF = "tests.flags.pages"
    env = tenant.production
    FlagFactory(environment=env, name="dashboard_equity_widget", test_cohort=True)
    tester = MemberFactory(environment=env, is_test=True)
    staff = staff_user(tenant.institution, "marketing")
    link = member_visit_link_build(environment=env, member=tester, actor=staff)
    browser = Client(HTTP_HOST=env.host)
    assert browser.get(urlsplit(link).path).status_code == 302
    assert b"class='on'" in browser.get(PAGE).content  # the staff member sees the widget
    with environment_scope(env):
        impressions = list(
            Event.objects.filter(name="flag_impression").values_list(
                "member_id", "is_test", "properties"
            )
        )
    assert impressions == [(tester.pk, True, {"flag": "dashboard_equity_widget", "variant": "on"})]
