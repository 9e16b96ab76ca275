"""The refinance alert, the monthly offer summary, and what the hourly beat starts."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from homes.models import Member
from institutions.tenancy import environment_scope
from notifications import tasks
from notifications.models import Delivery, NotificationSettings
from notifications.services.campaigns import campaigns_due
from tests.notifications.fake_homes import summary_for
from tests.notifications.helpers import deliveries, members, run_campaign

pytestmark = pytest.mark.django_db


def set_market(environment, rate, threshold="0.750") -> None:
    with environment_scope(environment):
        NotificationSettings.objects.update_or_create(
            environment=environment,
            defaults={"market_rate": rate, "refinance_threshold": Decimal(threshold)},
        )


def test_refinance_alert__only_members_paying_the_threshold_above_market__get_it(
    tenant, home_data, django_capture_on_commit_callbacks
):
    env = tenant.production
    set_market(env, Decimal("6.000"))
    well_above, just_at, just_below, no_rate = members(env, 4)
    home_data[well_above.pk] = summary_for(well_above.pk, member_rate=Decimal("7.125"))
    home_data[just_at.pk] = summary_for(just_at.pk, member_rate=Decimal("6.750"))
    home_data[just_below.pk] = summary_for(just_below.pk, member_rate=Decimal("6.749"))
    home_data[no_rate.pk] = summary_for(no_rate.pk, member_rate=None)
    people = [well_above, just_at, just_below, no_rate]
    run_campaign(django_capture_on_commit_callbacks, env, "refinance_alert", people)

    rows = deliveries(env, campaign_key="refinance_alert:2026-05")
    assert {r.member_id for r in rows} == {well_above.pk, just_at.pk}
    assert {r.state for r in rows} == {Delivery.State.SENT}
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {well_above.email, just_at.email}
    message = by_address[well_above.email]
    assert message.subject == "Rates are down to 6%: you pay 7.125%"
    assert "below the 7.125% on your mortgage" in message.body


def test_refinance_alert__no_market_rate__sends_nothing(tenant, django_capture_on_commit_callbacks):
    env = tenant.production
    set_market(env, None)
    run_campaign(django_capture_on_commit_callbacks, env, "refinance_alert", members(env, 2))
    assert deliveries(env) == []
    assert mail.outbox == []


def test_offer_summary__members_with_an_offer_get_it__others_suppressed_with_reason(
    tenant, home_data, django_capture_on_commit_callbacks
):
    env = tenant.production
    with_offer, without_offer = members(env, 2)
    home_data[without_offer.pk] = summary_for(
        without_offer.pk, top_offer_title=None, top_offer_path=None
    )
    run_campaign(
        django_capture_on_commit_callbacks, env, "offer_summary", [with_offer, without_offer]
    )

    (sent,) = deliveries(env, member=with_offer)
    assert sent.state == Delivery.State.SENT
    assert sent.category == "offers"
    (suppressed,) = deliveries(env, member=without_offer)
    assert (suppressed.state, suppressed.reason) == ("suppressed", "no offer")
    (message,) = mail.outbox
    assert message.to == [with_offer.email]
    assert message.subject == "Your offer this month: Home equity line of credit"
    assert f"{env.base_url}/offers/{with_offer.pk}/" in message.body
    assert "$180,000 of equity" in message.body


def test_offer_summary__quarterly_member__skipped_outside_quarter_months(
    tenant, django_capture_on_commit_callbacks
):
    from notifications.services import profile_update

    env = tenant.production
    (member,) = members(env, 1)
    with environment_scope(env):
        profile_update(environment=env, member=member, digest_frequency="quarterly")
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member], "2026-05")
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member], "2026-07")
    states = {d.campaign_key: (d.state, d.reason) for d in deliveries(env)}
    assert states == {
        "offer_summary:2026-05": ("suppressed", "quarterly digest: not a quarter month"),
        "offer_summary:2026-07": ("sent", ""),
    }


def local(environment, *args) -> datetime:
    return datetime(*args, tzinfo=environment.institution.tz)


def test_campaigns_due__first_of_the_month_after_nine__starts_both_digests_once(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    set_market(env, None)
    people = members(env, 3)
    members(env, 1, enrollment=Member.Enrollment.PENDING)
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        result = campaigns_due(environment=env, now=local(env, 2026, 6, 1, 9, 5))
    assert result["started"] == ["home_value:2026-06", "offer_summary:2026-06"]
    rows = deliveries(env, campaign_key__in=["home_value:2026-06", "offer_summary:2026-06"])
    assert len(rows) == 6
    assert {r.member_id for r in rows} == {m.pk for m in people}
    assert {r.state for r in rows} == {Delivery.State.SENT}
    assert len(mail.outbox) == 6

    # The next hour: everything is planned already, nothing starts again.
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        again = campaigns_due(environment=env, now=local(env, 2026, 6, 1, 10, 5))
    assert again["started"] == []
    assert len(mail.outbox) == 6


def test_campaigns_due__before_nine_or_after_the_first_days__starts_no_digest(tenant):
    env = tenant.production
    set_market(env, None)
    members(env, 2)
    with environment_scope(env):
        early = campaigns_due(environment=env, now=local(env, 2026, 6, 1, 8, 59))
        later = campaigns_due(environment=env, now=local(env, 2026, 6, 4, 12, 0))
    assert early["started"] == later["started"] == []
    assert deliveries(env, campaign_key__startswith="home_value") == []


def test_campaigns_due__market_rate_set__refinance_alert_any_day_once_a_month(
    tenant, home_data, django_capture_on_commit_callbacks
):
    env = tenant.production
    set_market(env, Decimal("5.875"))
    (member,) = members(env, 1)  # pays 6.875 in the fake home data
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        first = campaigns_due(environment=env, now=local(env, 2026, 6, 14, 11, 0))
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        second = campaigns_due(environment=env, now=local(env, 2026, 6, 20, 11, 0))
    assert first["started"] == ["refinance_alert:2026-06"]
    assert second["started"] == []
    (row,) = deliveries(env, campaign_key="refinance_alert:2026-06")
    assert row.state == Delivery.State.SENT
    assert [m.to for m in mail.outbox] == [[member.email]]


def test_campaigns_due__recent_enrollment_without_welcome__catches_up_once(tenant):
    env = tenant.production
    set_market(env, None)
    recent, old = members(env, 2)
    with environment_scope(env):
        Member.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
        campaigns_due(environment=env, now=timezone.now())
        campaigns_due(environment=env, now=timezone.now())
    welcome = deliveries(env, campaign_key__startswith="welcome_")
    assert sorted((d.member_id, d.campaign_key) for d in welcome) == [
        (recent.pk, "welcome_1"),
        (recent.pk, "welcome_3"),
        (recent.pk, "welcome_5"),
    ]
    assert {d.state for d in welcome} == {Delivery.State.PENDING}


def test_daily_beat_task__runs_every_environment_in_its_scope(
    tenant, other_tenant, django_capture_on_commit_callbacks, monkeypatch
):
    # Alerts start from 09:00 in the institution's time zone: a Tuesday afternoon there,
    # whatever the hour the suite runs at.
    afternoon = datetime(2025, 3, 4, 15, 0, tzinfo=tenant.institution.tz)
    monkeypatch.setattr(timezone, "now", lambda: afternoon)
    for env in (tenant.production, other_tenant.production):
        set_market(env, Decimal("5.875"))
    mine = members(tenant.production, 1)
    theirs = members(other_tenant.production, 1)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.daily()
    # Refinance alerts start whatever the date (digests wait for the 1st).
    assert any("refinance_alert" in key for key in result[tenant.production.pk]["started"])
    assert any("refinance_alert" in key for key in result[other_tenant.production.pk]["started"])
    assert {m.to[0] for m in mail.outbox if "Rates are down" in m.subject} == {
        mine[0].email,
        theirs[0].email,
    }


def test_campaigns_due__refinance_alert__members_scanned_once_a_day_or_when_the_rate_moves(
    tenant, home_data, django_capture_on_commit_callbacks
):
    """Every scan computes the home figures of each member not alerted this month; one who
    does not qualify is looked at again the next day, or at once when the rate moves."""
    env = tenant.production
    set_market(env, Decimal("6.875"))  # the member pays 6.875: no gap, no alert
    members(env, 1)

    def hour(day, at, rate=None):
        if rate is not None:
            set_market(env, rate)
        with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
            return campaigns_due(environment=env, now=local(env, 2026, 6, day, at, 0))["started"]

    scanned = ["refinance_alert:2026-06"]
    assert hour(14, 10) == scanned
    assert hour(14, 11) == []  # the same day: nothing new to look at
    assert hour(15, 10) == scanned  # the next day
    assert hour(15, 11, rate=Decimal("5.875")) == scanned  # the rate moved
    assert len(deliveries(env, campaign_key="refinance_alert:2026-06")) == 1
