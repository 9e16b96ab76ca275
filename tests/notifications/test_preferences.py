"""Preferences, consent, one-click unsubscribe, quiet hours and disengagement."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail
from django.test import Client

from homes.services import member_erase
from institutions import events
from institutions.tenancy import environment_scope
from notifications import tokens
from notifications.models import (
    ConsentRecord,
    Delivery,
    NotificationProfile,
    NotificationSettings,
    Preference,
)
from notifications.services.outbox import DeliveryPlan, deliveries_build, deliveries_enqueue
from tests.conftest import member_client
from tests.notifications.helpers import deliveries, members, run_campaign

pytestmark = pytest.mark.django_db


def unsubscribe_url(member, category="home_value") -> str:
    token = tokens.unsubscribe_token(
        environment_id=member.environment_id, member_id=member.pk, category=category
    )
    return f"/notifications/unsubscribe/{token}/"


@pytest.fixture
def recorded_events():
    seen = []
    events.register_sink(seen.append)
    yield seen
    events._sinks.remove(seen.append)


def test_preferences_page__saving__records_consent_and_emits_the_event(tenant, recorded_events):
    (member,) = members(tenant.production, 1)
    client = member_client(member)
    page = client.get("/notifications/preferences/")
    assert page.status_code == 200
    assert b"Send me offers and rate alerts by email." in page.content
    data = {
        "digest_frequency": "quarterly",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "home_value__email": "on",
        "home_value__push": "on",
        "appointments__email": "on",
        "appointments__push": "on",
        "offers__push": "on",  # offers by email left unchecked: an opt-out
    }
    assert client.post("/notifications/preferences/", data).status_code == 200
    with environment_scope(tenant.production):
        pref = Preference.objects.get(member=member)
        assert (pref.category, pref.channel, pref.enabled) == ("offers", "email", False)
        consent = ConsentRecord.objects.get(member=member)
        assert consent.granted is False
        assert consent.method == "preferences"
        assert consent.text_shown == "Stop sending me offers and rate alerts by email."
        profile = NotificationProfile.objects.get(member=member)
        assert profile.digest_frequency == "quarterly"
        assert profile.quiet_start == time(22, 0)
    (event,) = [e for e in recorded_events if e.name == "channel_preference_set"]
    assert event.properties["channel"] == "email"
    assert event.properties["category"] == "offers"


def test_preferences_page__behind_a_load_balancer__consent_names_the_member_address(
    tenant, settings
):
    settings.TRUSTED_PROXY_HOPS = 1
    (member,) = members(tenant.production, 1)
    client = member_client(member)
    data = {"digest_frequency": "monthly", "home_value__email": "on"}
    forwarded = {"HTTP_X_FORWARDED_FOR": "10.9.9.9, 203.0.113.7", "REMOTE_ADDR": "10.0.0.2"}
    assert client.post("/notifications/preferences/", data, **forwarded).status_code == 200
    with environment_scope(tenant.production):
        clients = set(ConsentRecord.objects.filter(member=member).values_list("client", flat=True))
    assert clients == {"203.0.113.7"}  # not the balancer's 10.0.0.2, nor the forged entry


def test_preferences_page__half_quiet_hours__shows_the_error_and_changes_nothing(tenant):
    (member,) = members(tenant.production, 1)
    response = member_client(member).post(
        "/notifications/preferences/", {"digest_frequency": "monthly", "quiet_start": "22:00"}
    )
    assert response.status_code == 400
    assert b"both ends of the quiet hours" in response.content
    with environment_scope(tenant.production):
        assert not Preference.objects.exists()
        assert not NotificationProfile.objects.exists()


def test_preferences_page__invalid_quiet_hours__page_still_names_the_time_zone(tenant):
    """A member who types a bad quiet-hours time gets the form back with the error, but the
    legend now reads "Quiet hours ()": the time zone the hours are in is gone (and the
    "Notifications on this device" section too), because the error path renders the template
    without the page's context (notifications/views.py _preferences_page)."""
    (member,) = members(tenant.production, 1)
    zone = tenant.production.institution.time_zone
    client = member_client(member)
    assert f"Quiet hours ({zone})" in client.get("/notifications/preferences/").content.decode()
    response = client.post(
        "/notifications/preferences/",
        {"digest_frequency": "monthly", "quiet_start": "25:99", "quiet_end": "07:00"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    legend = re.search(r"<legend>Quiet hours[^<]*</legend>", html).group(0)
    assert legend == f"<legend>Quiet hours ({zone})</legend>", legend


def test_unsubscribe_link__get_changes_nothing__post_unsubscribes_without_login(tenant):
    (member,) = members(tenant.production, 1)
    client = Client(HTTP_HOST=tenant.production.host)  # not signed in
    url = unsubscribe_url(member)
    page = client.get(url)
    assert page.status_code == 200
    with environment_scope(tenant.production):
        assert not Preference.objects.exists()
    done = client.post(url)
    assert done.status_code == 200
    assert b"Change what we send you" in done.content  # offers preference changes
    with environment_scope(tenant.production):
        pref = Preference.objects.get(member=member)
        assert (pref.category, pref.channel, pref.enabled) == ("home_value", "email", False)
        assert ConsentRecord.objects.get(member=member).method == "unsubscribe_link"


def test_one_click_post__rfc8058__unsubscribes_without_csrf(tenant):
    (member,) = members(tenant.production, 1)
    client = Client(HTTP_HOST=tenant.production.host, enforce_csrf_checks=True)
    response = client.post(unsubscribe_url(member, "offers"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with environment_scope(tenant.production):
        assert ConsentRecord.objects.get(member=member).method == "one_click"
        assert not Preference.objects.get(member=member, category="offers").enabled


def test_unsubscribe_link__valid_for_60_days__refused_later_or_elsewhere(tenant, other_tenant):
    (member,) = members(tenant.production, 1)
    url = unsubscribe_url(member)
    client = Client(HTTP_HOST=tenant.production.host)
    from unittest import mock

    later = datetime.now(UTC) + timedelta(days=61)
    with mock.patch("django.core.signing.time.time", return_value=later.timestamp()):
        assert client.get(url).status_code == 200
    much_later = datetime.now(UTC) + timedelta(days=91)
    with mock.patch("django.core.signing.time.time", return_value=much_later.timestamp()):
        assert client.get(url).status_code == 404
    assert Client(HTTP_HOST=other_tenant.production.host).post(url).status_code == 404
    assert client.post(url.replace("unsubscribe/", "unsubscribe/x")).status_code == 404


def test_manage_link__changes_preferences_without_login(tenant):
    (member,) = members(tenant.production, 1)
    token = tokens.unsubscribe_token(
        environment_id=tenant.production.pk, member_id=member.pk, category="*"
    )
    client = Client(HTTP_HOST=tenant.production.host)
    response = client.post(f"/notifications/manage/{token}/", {"digest_frequency": "never"})
    assert response.status_code == 200
    with environment_scope(tenant.production):
        assert NotificationProfile.objects.get(member=member).digest_frequency == "never"
        assert Preference.objects.filter(member=member, enabled=False).count() == 6


def test_manage_and_unsubscribe_links__of_an_erased_member__invalid_and_record_nothing(tenant):
    """The links in emails sent before an erasure show nobody's preferences, and a mail
    client's one-click POST writes no consent record (with the caller's address) about the
    erased person."""
    env = tenant.production
    (member,) = members(env, 1)
    manage = tokens.unsubscribe_token(environment_id=env.pk, member_id=member.pk, category="*")
    one_click = unsubscribe_url(member, "offers")
    with environment_scope(env):
        member_erase(environment=env, member=member, actor_label="erasure request")
    client = Client(HTTP_HOST=env.host)

    assert client.get(f"/notifications/manage/{manage}/").status_code == 404
    assert client.post(one_click, {"List-Unsubscribe": "One-Click"}).status_code == 404
    with environment_scope(env):
        assert not ConsentRecord.objects.filter(member=member).exists()
        assert not Preference.objects.filter(member=member).exists()


def test_opted_out_member__gets_suppressed_marketing__but_account_messages(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1)
    Client(HTTP_HOST=env.host).post(unsubscribe_url(member), {"scope": "all"})
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (row,) = deliveries(env)
    assert row.state == Delivery.State.SUPPRESSED
    assert row.reason == "member opted out of home_value by email"
    from notifications.services.campaigns import welcome_series_enqueue

    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        welcome_series_enqueue(
            environment=env, members=[member], enrolled_at=datetime.now(UTC) - timedelta(days=2)
        )
    welcome = {d.campaign_key: d for d in deliveries(env) if d.category == "account"}
    assert welcome["welcome_1"].state == Delivery.State.SENT  # account messages bypass opt-outs
    assert welcome["welcome_3"].state == Delivery.State.PENDING  # not due yet
    assert len(mail.outbox) == 1


def test_quiet_hours__in_institution_time__defer_not_drop(tenant, monkeypatch):
    env = tenant.production  # America/New_York
    (member,) = members(env, 1)
    with environment_scope(env):
        NotificationSettings.objects.create(
            environment=env, quiet_start=time(21, 0), quiet_end=time(8, 0)
        )
        # 23:30 in New York is 03:30 UTC the next day.
        plan = DeliveryPlan(
            campaign_key="home_value:2026-05",
            template_key="home_value",
            category="home_value",
            contexts={member.pk: {}},
            scheduled_at=datetime(2026, 5, 2, 3, 30, tzinfo=UTC),
        )
        (row,) = deliveries_build(environment=env, plan=plan, members=[member])
    assert row.state == Delivery.State.PENDING
    assert row.scheduled_at == datetime(2026, 5, 2, 12, 0, tzinfo=UTC)  # 08:00 New York


EVERYTHING_ON = {
    f"{category}__{channel}": "on"
    for category in ("home_value", "offers", "appointments")
    for channel in ("email", "push")
}


def test_digest_frequency_never__chosen_while_the_update_waits_out_quiet_hours__not_sent(
    tenant, django_capture_on_commit_callbacks
):
    """A monthly update planned, deferred past the quiet hours, and turned off ("Never")
    by the member before they end, is not sent."""
    from notifications import tasks

    env = tenant.production  # America/New_York
    (member,) = members(env, 1)
    with environment_scope(env):
        NotificationSettings.objects.create(
            environment=env, quiet_start=time(21, 0), quiet_end=time(8, 0)
        )
    late = datetime(2099, 6, 2, 3, 30, tzinfo=UTC)  # 23:30 in New York: deferred to 08:00
    plan = DeliveryPlan(
        campaign_key="home_value:2099-06",
        template_key="home_value",
        category="home_value",
        contexts={member.pk: {"home": {"value_display": "$1"}}},
        digest_period=(2099, 6),
        scheduled_at=late,
    )
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        deliveries_enqueue(environment=env, plan=plan, members=[member])
    assert deliveries(env)[0].state == Delivery.State.PENDING

    # Before 08:00 the member turns the monthly updates off on the preferences page.
    response = member_client(member).post(
        "/notifications/preferences/", {"digest_frequency": "never", **EVERYTHING_ON}
    )
    assert response.status_code == 200
    (row,) = deliveries(env)
    assert (row.state, row.reason) == (Delivery.State.SUPPRESSED, "digest frequency: never")

    # 08:00 comes: nothing goes.
    with environment_scope(env):
        Delivery.objects.update(scheduled_at=datetime(2000, 1, 1, tzinfo=UTC))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    assert deliveries(env)[0].state == Delivery.State.SUPPRESSED
    assert mail.outbox == []


def test_digest_frequency_quarterly__stops_planned_digests_of_other_months_only(
    tenant, django_capture_on_commit_callbacks
):
    """Quarterly: a May digest not sent yet stops; April's (a quarter month) and an
    offer's rate alert, which is not a digest, still go."""
    from notifications.services import profile_update
    from notifications.services.campaigns import campaign_enqueue_members

    env = tenant.production
    (member,) = members(env, 1)
    with django_capture_on_commit_callbacks(execute=False), environment_scope(env):
        NotificationSettings.objects.create(environment=env, market_rate="5.000")
        for campaign, period in [
            ("home_value", "2026-05"),
            ("offer_summary", "2026-04"),
            ("refinance_alert", "2026-05"),
        ]:
            campaign_enqueue_members(
                environment=env, campaign=campaign, period=period, member_ids=[member.pk]
            )
        profile_update(environment=env, member=member, digest_frequency="quarterly")
    states = {d.campaign_key: (d.state, d.reason) for d in deliveries(env)}
    assert states == {
        "home_value:2026-05": ("suppressed", "quarterly digest: not a quarter month"),
        "offer_summary:2026-04": ("pending", ""),
        "refinance_alert:2026-05": ("pending", ""),
    }


def test_disengaged_member__digest_drops_to_quarterly__until_an_open(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1)
    with environment_scope(env):
        NotificationSettings.objects.create(environment=env, unopened_limit=2)
    for period in ("2026-01", "2026-02"):
        run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member], period)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member], "2026-03")
    march = deliveries(env, campaign_key="home_value:2026-03")[0]
    assert march.state == Delivery.State.SUPPRESSED
    assert march.reason.startswith("disengaged")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member], "2026-04")
    assert deliveries(env, campaign_key="home_value:2026-04")[0].state == "sent"  # a quarter
    # The member opens the April email (the signed pixel): monthly again.
    april = deliveries(env, campaign_key="home_value:2026-04")[0]
    pixel = tokens.track_token(environment_id=env.pk, delivery_id=april.pk)
    response = Client(HTTP_HOST=env.host).get(f"/notifications/o/{pixel}.gif")
    assert response["Content-Type"] == "image/gif"
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member], "2026-05")
    assert deliveries(env, campaign_key="home_value:2026-05")[0].state == "sent"
    assert deliveries(env, campaign_key="home_value:2026-04")[0].opened_at is not None


def test_click_redirect__signed__records_and_redirects__tampered_404(tenant):
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    row = DeliveryFactory(environment=env)
    token = tokens.track_token(environment_id=env.pk, delivery_id=row.pk, url="https://x.test/a")
    client = Client(HTTP_HOST=env.host)
    response = client.get(f"/notifications/c/{token}/")
    assert response.status_code == 302
    assert response["Location"] == "https://x.test/a"
    assert deliveries(env, pk=row.pk)[0].clicked_at is not None
    assert client.get(f"/notifications/c/{token}x/").status_code == 404


def test_one_click_unsubscribe__after_planning__pending_row_suppressed_and_never_sent(
    tenant, django_capture_on_commit_callbacks
):
    from notifications import tasks
    from notifications.services.outbox import deliveries_enqueue

    env = tenant.production  # America/New_York
    (member,) = members(env, 1)
    with environment_scope(env):
        NotificationSettings.objects.create(
            environment=env, quiet_start=time(21, 0), quiet_end=time(8, 0)
        )
    late = datetime(2099, 5, 2, 3, 30, tzinfo=UTC)  # 23:30 in New York: deferred to 08:00
    plan = DeliveryPlan(
        campaign_key="home_value:2099-05",
        template_key="home_value",
        category="home_value",
        contexts={member.pk: {"home": {"value_display": "$1"}}},
        scheduled_at=late,
    )
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        deliveries_enqueue(environment=env, plan=plan, members=[member])
    assert deliveries(env)[0].state == Delivery.State.PENDING

    # Before 08:00 the member one-click unsubscribes (RFC 8058).
    response = Client(HTTP_HOST=env.host).post(
        unsubscribe_url(member, "home_value"), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    (row,) = deliveries(env)
    assert (row.state, row.reason) == ("suppressed", "member opted out of home_value by email")

    with environment_scope(env):  # 08:00 comes: the sweeper finds nothing to send
        Delivery.objects.filter(pk=row.pk).update(scheduled_at=datetime(2000, 1, 1, tzinfo=UTC))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    assert deliveries(env)[0].state == Delivery.State.SUPPRESSED
    assert mail.outbox == []


def test_preference_set__opt_out__suppresses_that_category_and_channel_only(tenant):
    from notifications.models import ConsentRecord as Consent
    from notifications.services import preference_set
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    (member,) = members(env, 1)
    pending = {
        (category, channel): DeliveryFactory(
            environment=env,
            member=member,
            category=category,
            channel=channel,
            state=Delivery.State.PENDING,
        )
        for category in ("offers", "home_value", "account")
        for channel in ("email", "push")
    }
    with environment_scope(env):
        preference_set(
            environment=env,
            member=member,
            category="offers",
            channel="email",
            enabled=False,
            method=Consent.Method.PREFERENCES,
        )
    states = {key: deliveries(env, pk=row.pk)[0].state for key, row in pending.items()}
    assert states.pop(("offers", "email")) == Delivery.State.SUPPRESSED
    assert set(states.values()) == {Delivery.State.PENDING}


def test_unsubscribe_all__stops_update_and_offer_email__appointment_messages_still_arrive(tenant):
    (member,) = members(tenant.production, 1)
    Client(HTTP_HOST=tenant.production.host).post(unsubscribe_url(member), {"scope": "all"})
    with environment_scope(tenant.production):
        off = set(
            Preference.objects.filter(member=member, enabled=False).values_list(
                "category", flat=True
            )
        )
    assert off == {"home_value", "offers"}


def test_unsubscribe_page__consent_records_hold_the_words_the_page_showed(tenant):
    import html

    env = tenant.production
    (member,) = members(env, 1)
    client = Client(HTTP_HOST=env.host)
    url = unsubscribe_url(member, "offers")
    page = html.unescape(client.get(url).content.decode())
    client.post(url, {"scope": "all"})
    with environment_scope(env):
        texts = dict(
            ConsentRecord.objects.filter(member=member).values_list("category", "text_shown")
        )
    assert set(texts) == {"offers", "home_value"}
    for text in texts.values():
        for sentence in text.split("\n"):
            assert sentence in page, (sentence, page)
    assert "offers" in texts["offers"].lower()
    assert "Also stop every other update and offer email" in texts["home_value"]


def test_welcome_series__inside_quiet_hours__deferred_to_their_end(tenant):
    from notifications.services.campaigns import welcome_series_enqueue

    env = tenant.production  # America/New_York
    (member,) = members(env, 1)
    with environment_scope(env):
        NotificationSettings.objects.create(
            environment=env, quiet_start=time(21, 0), quiet_end=time(8, 0)
        )
        enrolled = datetime(2099, 5, 1, 23, 30, tzinfo=env.institution.tz)
        welcome_series_enqueue(environment=env, members=[member], enrolled_at=enrolled)
    for day in (1, 3, 5):
        (row,) = deliveries(env, campaign_key=f"welcome_{day}")
        assert row.state == Delivery.State.PENDING
        assert row.scheduled_at == datetime(2099, 5, 2 + day, 8, 0, tzinfo=env.institution.tz)
