"""Email through a real local SMTP server: branded multipart, RFC 8058 headers, the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from institutions.models import Branding
from institutions.tenancy import environment_scope
from notifications.models import Delivery, NotificationProfile, NotificationSettings
from notifications.services import deliveries_claim
from notifications.services.sending import deliveries_send
from tests.notifications.factories import template_factory
from tests.notifications.helpers import deliveries, members, run_campaign

pytestmark = pytest.mark.django_db


def test_home_value_update__over_smtp__is_branded_multipart_with_unsubscribe_headers(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(
            display_name="Cascade FCU", primary_color="#123456"
        )
    (member,) = members(env, 1, email="ada@example.test", first_name="Ada")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])

    (row,) = deliveries(env, member=member)
    assert row.state == Delivery.State.SENT, (row.reason, row.last_error)
    (message,) = smtp_settings.to("ada@example.test")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith(f"{env.base_url}/notifications/unsubscribe/")
    assert message["Message-ID"] == row.provider_message_id
    assert "Cascade FCU" in message["From"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    value = f"${400000 + member.pk * 10:,}"
    assert value in text
    assert value in html
    assert "Hello Ada" in text
    assert tenant.institution.postal_address in text
    assert tenant.institution.postal_address in html
    assert "#123456" in html  # branding colour
    assert "/notifications/o/" in html  # open pixel
    assert "/notifications/c/" in html  # links go through the click redirect


def test_campaign__run_twice__sends_once(tenant, smtp_settings, django_capture_on_commit_callbacks):
    env = tenant.production
    people = members(env, 3)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)
    assert len(smtp_settings.messages) == 3
    assert len(deliveries(env)) == 3


def test_claim__second_claim_of_same_ids__gets_nothing(tenant):
    env = tenant.production
    from tests.notifications.factories import DeliveryFactory

    row = DeliveryFactory(environment=env, state=Delivery.State.PENDING)
    with environment_scope(env):
        first = deliveries_claim(environment=env, delivery_ids=[row.pk])
        second = deliveries_claim(environment=env, delivery_ids=[row.pk])
        assert [d.pk for d in first] == [row.pk]
        assert second == []
        assert deliveries_send(environment=env, delivery_ids=[row.pk]).sent == 0


def test_member_without_home_value__gets_a_suppressed_delivery(
    tenant, home_data, django_capture_on_commit_callbacks
):
    env = tenant.production
    with_home, without = members(env, 2)
    home_data[without.pk] = None
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [with_home, without])
    (row,) = deliveries(env, member=without)
    assert (row.state, row.reason) == (Delivery.State.SUPPRESSED, "no home value")
    assert len(mail.outbox) == 1


def test_staging__never_reaches_a_real_inbox__only_sink_and_allowlist(
    tenant, smtp_settings, tmp_path, settings, django_capture_on_commit_callbacks
):
    env = tenant.staging
    settings.NOTIFICATIONS_STAGING_EMAIL_URL = f"filemail:///{tmp_path}"
    allowed, other = members(env, 2)
    with environment_scope(env):
        NotificationSettings.objects.create(environment=env, test_addresses=[allowed.email])
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [allowed, other])

    # The real SMTP server saw only the allowlisted test inbox.
    assert [rcpt for rcpt, _ in smtp_settings.messages] == [[allowed.email]]
    sunk = "".join(p.read_text() for p in tmp_path.iterdir())
    assert other.email in sunk
    assert "X-Chimney-Staging-Sink: 1" in sunk
    by_member = {d.member_id: d for d in deliveries(env)}
    assert by_member[other.pk].sink == "sink"
    assert by_member[other.pk].state == "sent"
    assert by_member[allowed.pk].sink == "allowlist"


def test_staging__allowlist_saved_before_it_was_checked__entries_not_addresses_skipped(
    tenant, smtp_settings, tmp_path, settings, django_capture_on_commit_callbacks
):
    """A stored allowlist with a number in it (written before the admin checked it) still
    lets staging send: the allowlisted address, in any case, reaches its inbox."""
    env = tenant.staging
    settings.NOTIFICATIONS_STAGING_EMAIL_URL = f"filemail:///{tmp_path}"
    allowed, other = members(env, 2)
    with environment_scope(env):
        NotificationSettings.objects.create(environment=env)
        NotificationSettings.objects.update(test_addresses=[42, allowed.email.upper()])
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [allowed, other])

    assert [rcpt for rcpt, _ in smtp_settings.messages] == [[allowed.email]]
    by_member = {d.member_id: d for d in deliveries(env)}
    assert (by_member[allowed.pk].state, by_member[allowed.pk].sink) == ("sent", "allowlist")
    assert (by_member[other.pk].state, by_member[other.pk].sink) == ("sent", "sink")


def test_bounced_address__fails_visibly__and_rest_of_fanout_is_sent(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    (good,) = members(env, 1)
    (bad,) = members(env, 1, email="bounce-me@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [bad, good])
    rows = {d.member_id: d for d in deliveries(env)}
    assert rows[bad.pk].state == Delivery.State.FAILED
    assert rows[bad.pk].reason.startswith("bounced: 550")
    assert rows[good.pk].state == Delivery.State.SENT
    with environment_scope(env):
        assert NotificationProfile.objects.get(member=bad).email_bounced_at is not None
    # A dead address is never used again, account messages included.
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [bad])
    (later,) = deliveries(env, member=bad, campaign_key="offer_summary:2026-05")
    assert later.state == Delivery.State.SUPPRESSED
    assert later.reason.startswith("email address bounced")


def test_smtp_pipelining__envelope_sent_at_once__same_outcome_per_address(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    smtp_settings.handler.pipelining = True
    smtp_settings.handler.transient.add("later@example.test")
    (good,) = members(env, 1, email="good@example.test")
    (bad,) = members(env, 1, email="bounce-me@example.test")
    (later,) = members(env, 1, email="later@example.test")
    (also,) = members(env, 1, email="also@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [good, bad, later, also])

    assert "250-PIPELINING" in smtp_settings.handler.ehlo_offers
    rows = {d.member_id: d for d in deliveries(env)}
    assert rows[good.pk].state == rows[also.pk].state == Delivery.State.SENT
    assert (rows[bad.pk].state, rows[bad.pk].reason[:12]) == ("failed", "bounced: 550")
    assert rows[later.pk].state == Delivery.State.PENDING
    assert "451" in rows[later.pk].last_error
    assert sorted(r[0] for r, _ in smtp_settings.messages) == [also.email, good.email]
    (message,) = smtp_settings.to(good.email)
    assert message["X-Chimney-Delivery"] == str(rows[good.pk].pk)


def test_smtp_transient_error__is_retried_with_backoff__then_dead(
    tenant, smtp_settings, settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    (member,) = members(env, 1, email="later@example.test")
    smtp_settings.handler.transient.add("later@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (row,) = deliveries(env)
    assert row.state == Delivery.State.PENDING
    assert row.attempts == 1
    assert "451" in row.last_error
    assert row.scheduled_at > row.created_at  # backoff: not before its time
    with environment_scope(env):
        Delivery.objects.filter(pk=row.pk).update(scheduled_at=row.created_at)
        deliveries_send(environment=env, delivery_ids=[row.pk])
    (row,) = deliveries(env)
    assert (row.state, row.attempts) == (Delivery.State.DEAD, 2)
    assert "gave up" in row.reason


def test_smtp_server_down__deliveries_wait_for_retry(
    tenant, settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    from tests.notifications.conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    people = members(env, 2)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)
    rows = deliveries(env)
    assert {r.state for r in rows} == {Delivery.State.PENDING}
    assert all("Connection refused" in r.last_error or "Errno" in r.last_error for r in rows)


def test_template_that_does_not_render__fails_visibly__others_still_sent(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    template_factory(env, "home_value", subject="{% if %}broken")
    people = members(env, 2)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)
    rows = deliveries(env)
    assert {r.state for r in rows} == {Delivery.State.FAILED}
    assert all(r.reason == "template error" and "does not compile" in r.last_error for r in rows)
    template_factory(env, "offer_summary")
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", people)
    assert len(mail.outbox) == 2


def test_smtp__worker_slower_than_its_lease__sends_nothing_once_reclaimed(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.services import deliveries_sweep
    from notifications.services.sending import deliveries_send_claimed

    env = tenant.production
    people = members(env, 2)
    with django_capture_on_commit_callbacks(execute=False), environment_scope(env):
        from notifications.services.campaigns import campaign_enqueue_members

        campaign_enqueue_members(
            environment=env,
            campaign="home_value",
            period="2026-05",
            member_ids=[m.pk for m in people],
        )
    ids = [d.pk for d in deliveries(env)]
    with environment_scope(env):
        slow = deliveries_claim(environment=env, delivery_ids=ids)
        # The lease runs out: the sweeper releases the rows and another worker claims them.
        later = timezone.now() + timedelta(hours=1)
        with django_capture_on_commit_callbacks(execute=False):
            assert deliveries_sweep(environment=env, now=later)["released"] == 2
        fresh = deliveries_claim(environment=env, delivery_ids=ids)
        assert [d.pk for d in fresh] == ids

        late = deliveries_send_claimed(environment=env, claimed=slow)
        assert (late.sent, smtp_settings.messages) == (0, [])  # dropped before the final dot
        assert {d.state for d in deliveries(env)} == {Delivery.State.SENDING}

        assert deliveries_send_claimed(environment=env, claimed=fresh).sent == 2
    assert len(smtp_settings.messages) == 2
    assert {d.state for d in deliveries(env)} == {Delivery.State.SENT}


def _planned(env, campaign, people) -> list[int]:
    """Plan a campaign for these members without sending it; the delivery ids."""
    from notifications.services.campaigns import campaign_enqueue_members

    with environment_scope(env):
        campaign_enqueue_members(
            environment=env, campaign=campaign, period="2026-05", member_ids=[m.pk for m in people]
        )
    return [d.pk for d in deliveries(env)]


def test_send__member_opted_out_bounced_or_left_after_planning__suppressed_at_send_time(
    tenant, django_capture_on_commit_callbacks
):
    from homes.models import Member
    from notifications.models import ConsentRecord, Preference
    from notifications.services import email_bounce_record, preference_set
    from notifications.services.campaigns import welcome_series_enqueue
    from notifications.services.sending import deliveries_send_claimed

    env = tenant.production
    stays, opted_out, bounced, left = members(env, 4)
    with django_capture_on_commit_callbacks(execute=False):
        _planned(env, "home_value", [stays, opted_out, bounced, left])
        with environment_scope(env):
            welcome_series_enqueue(
                environment=env, members=[opted_out], enrolled_at=timezone.now() - timedelta(days=2)
            )
    ids = [d.pk for d in deliveries(env, campaign_key__in=["home_value:2026-05", "welcome_1"])]
    with environment_scope(env):
        Member.objects.filter(pk=left.pk).update(enrollment=Member.Enrollment.OPTED_OUT)
        claimed = deliveries_claim(environment=env, delivery_ids=ids)
        assert len(claimed) == 5
        # While the batch is in flight, two members opt out or bounce.
        preference_set(
            environment=env,
            member=opted_out,
            category="home_value",
            channel="email",
            enabled=False,
            method=ConsentRecord.Method.PREFERENCES,
        )
        email_bounce_record(
            environment=env, member_id=bounced.pk, address=bounced.email, reason="550 gone"
        )
        assert Preference.objects.filter(enabled=False).count() == 1
        result = deliveries_send_claimed(environment=env, claimed=claimed)
    rows = {(d.member_id, d.campaign_key): d for d in deliveries(env, pk__in=ids)}
    home = {m: rows[(m.pk, "home_value:2026-05")] for m in (stays, opted_out, bounced, left)}
    assert home[stays].state == Delivery.State.SENT
    assert (home[opted_out].state, home[opted_out].reason) == (
        "suppressed",
        "member opted out of home_value by email",
    )
    assert (home[bounced].state, home[bounced].reason) == (
        "suppressed",
        "email address bounced (550 gone)",
    )
    assert (home[left].state, home[left].reason) == (
        "suppressed",
        "member not enrolled (opted_out)",
    )
    # Account mail keeps its exemption from marketing opt-outs.
    assert rows[(opted_out.pk, "welcome_1")].state == Delivery.State.SENT
    assert (result.sent, result.suppressed) == (2, 3)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([stays.email, opted_out.email])


def send_what_is_due(capture, env) -> None:
    """Time passes: every pending row is due, and the sweeper sends it."""
    from notifications import tasks

    with environment_scope(env):
        Delivery.objects.filter(state=Delivery.State.PENDING).update(
            scheduled_at=timezone.now() - timedelta(days=365)
        )
    with capture(execute=True):
        tasks.sweep()


def test_member_who_left_the_programme__rest_of_the_welcome_series__not_sent(
    tenant, django_capture_on_commit_callbacks
):
    """'I don't own a home' on day 2: the day 3 and day 5 emails about the member's home
    dashboard are not sent."""
    from homes.services.engagement import member_opt_out
    from notifications.services.campaigns import welcome_series_enqueue

    env = tenant.production
    (member,) = members(env, 1)
    enrolled = timezone.now() - timedelta(days=1, hours=6)
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        welcome_series_enqueue(environment=env, members=[member], enrolled_at=enrolled)
    assert len(mail.outbox) == 1  # day 1

    with environment_scope(env):
        member_opt_out(environment=env, member=member)
    send_what_is_due(django_capture_on_commit_callbacks, env)

    later = deliveries(env, campaign_key__in=["welcome_3", "welcome_5"])
    assert [(d.state, d.reason) for d in later] == [
        (Delivery.State.SUPPRESSED, "member not enrolled (opted_out)")
    ] * 2
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("frequency", "period", "reason"),
    [
        ("never", "2026-05", "digest frequency: never"),
        ("quarterly", "2026-05", "quarterly digest: not a quarter month"),
        ("quarterly", "2026-04", ""),
    ],
)
def test_send_time_recheck__digest_frequency_changed_after_planning__followed(
    tenant, frequency, period, reason, django_capture_on_commit_callbacks
):
    """A digest planned while the member took it monthly follows the frequency they have
    when it is sent (changed by staff, say, where nothing stops what was planned)."""
    from notifications.services.campaigns import campaign_enqueue_members
    from notifications.services.sending import deliveries_send_claimed

    env = tenant.production
    (member,) = members(env, 1)
    with django_capture_on_commit_callbacks(execute=False), environment_scope(env):
        campaign_enqueue_members(
            environment=env, campaign="home_value", period=period, member_ids=[member.pk]
        )
        NotificationProfile.objects.create(
            environment=env, member=member, digest_frequency=frequency
        )
        claimed = deliveries_claim(
            environment=env, delivery_ids=[d.pk for d in Delivery.objects.all()]
        )
        deliveries_send_claimed(environment=env, claimed=claimed)
    (row,) = deliveries(env)
    if reason:
        assert (row.state, row.reason) == (Delivery.State.SUPPRESSED, reason)
        assert mail.outbox == []
    else:
        assert row.state == Delivery.State.SENT
        assert len(mail.outbox) == 1


@pytest.mark.parametrize("size", [2, 8])
def test_send_time_recheck__a_fixed_number_of_queries__whatever_the_batch_size(
    tenant, size, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Preference
    from notifications.services.suppression import deliveries_suppress_unqualified

    env = tenant.production
    people = members(env, size)
    with django_capture_on_commit_callbacks(execute=False):
        ids = _planned(env, "home_value", people)
    with environment_scope(env):
        claimed = deliveries_claim(environment=env, delivery_ids=ids)
        Preference.objects.create(
            environment=env, member=people[0], category="home_value", channel="email", enabled=False
        )
        with CaptureQueriesContext(connection) as queries:
            suppressed = deliveries_suppress_unqualified(environment=env, claimed=claimed)
    assert suppressed == {d.pk for d in claimed if d.member_id == people[0].pk}
    assert len(queries) == 4  # profiles, preferences, push subscriptions; one UPDATE


def test_bounce__suppresses_the_pending_email_of_that_address_only(tenant):
    from notifications.services import email_bounce_record
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    (member,) = members(env, 1, email="gone@example.test")
    pending = {
        channel: DeliveryFactory(
            environment=env,
            member=member,
            category="account",
            channel=channel,
            state=Delivery.State.PENDING,
        )
        for channel in ("email", "push")
    }
    with environment_scope(env):
        # A bounce reported for an address the member no longer has changes nothing.
        email_bounce_record(
            environment=env, member_id=member.pk, address="old@example.test", reason="550 old"
        )
        assert Delivery.objects.get(pk=pending["email"].pk).state == Delivery.State.PENDING
        email_bounce_record(
            environment=env, member_id=member.pk, address="GONE@example.test", reason="550 gone"
        )
    (email,) = deliveries(env, pk=pending["email"].pk)
    assert (email.state, email.reason) == ("suppressed", "email address bounced (550 gone)")
    assert deliveries(env, pk=pending["push"].pk)[0].state == Delivery.State.PENDING


@pytest.mark.parametrize("how", ["member_update", "any_write"])
def test_bounced_address__corrected__email_flows_again(
    tenant, smtp_settings, how, django_capture_on_commit_callbacks
):
    from homes.models import Member
    from homes.services.members import member_update

    env = tenant.production
    (member,) = members(env, 1, email="bounce-me@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    assert deliveries(env)[0].state == Delivery.State.FAILED
    with environment_scope(env):
        profile = NotificationProfile.objects.get(member=member)
        assert profile.email_bounced_address == "bounce-me@example.test"
        if how == "member_update":
            member_update(environment=env, member=member, email="fixed@example.test")
        else:  # the admin, an API sync: whatever writes the address
            Member.objects.filter(pk=member.pk).update(email="fixed@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member])
    (later,) = deliveries(env, campaign_key="offer_summary:2026-05")
    assert later.state == Delivery.State.SENT, (later.state, later.reason)
    assert [r for r, _ in smtp_settings.messages] == [["fixed@example.test"]]
    # Back to the address that bounced: blocked again.
    with environment_scope(env):
        Member.objects.filter(pk=member.pk).update(email="Bounce-Me@example.test")
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member], "2026-06")
    (again,) = deliveries(env, campaign_key="offer_summary:2026-06")
    assert again.state == Delivery.State.SUPPRESSED
    assert again.reason.startswith("email address bounced")


def test_retry_task__queued_for_the_rows_scheduled_time__its_claim_finds_the_row(
    tenant, smtp_settings, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import random

    from django.utils import timezone as django_timezone

    from notifications.tasks import send_deliveries

    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 1
    monkeypatch.setattr(random, "uniform", lambda a, b: 0.6)  # delay 1.6 s: not whole
    env = tenant.production
    (member,) = members(env, 1, email="later@example.test")
    smtp_settings.handler.transient.add("later@example.test")
    with django_capture_on_commit_callbacks(execute=False):
        (pk,) = _planned(env, "home_value", [member])
    queued = []
    monkeypatch.setattr(send_deliveries, "apply_async", lambda *a, **kw: queued.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        send_deliveries.run(env.pk, [pk])  # 451: rescheduled with backoff, its task queued
    (row,) = deliveries(env, pk=pk)
    (task,) = queued
    assert row.state == Delivery.State.PENDING
    assert task["args"] == [env.pk, [pk]]
    assert task.get("countdown") is None
    assert row.scheduled_at <= task["eta"] < row.scheduled_at + timedelta(seconds=1)
    # Celery runs the task at its eta: its claim finds the row due.
    monkeypatch.setattr(django_timezone, "now", lambda: task["eta"])
    with environment_scope(env):
        assert [d.pk for d in deliveries_claim(environment=env, delivery_ids=[pk])] == [pk]


def test_delivery_state_changes__bump_updated_at__api_sync_and_failure_rate_see_them(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    from notifications.selectors import delivery_failure_rate
    from notifications.services.sending import deliveries_send
    from tests.api.helpers import api_client

    env = tenant.production
    (good,) = members(env, 1, external_id="GOOD")
    (bad,) = members(env, 1, email="bounce-me@example.test", external_id="BAD")
    with django_capture_on_commit_callbacks(execute=False):
        ids = _planned(env, "home_value", [good, bad])
    hour_ago = timezone.now() - timedelta(hours=1)
    with environment_scope(env):
        # Planned an hour ago; the send task runs now (a long queue).
        Delivery.objects.filter(pk__in=ids).update(created_at=hour_ago, updated_at=hour_ago)
        assert set(Delivery.objects.values_list("updated_at", flat=True)) == {hour_ago}
    synced_at = timezone.now()
    with environment_scope(env):
        deliveries_send(environment=env, delivery_ids=ids)
    rows = {d.member_id: d for d in deliveries(env)}
    assert (rows[good.pk].state, rows[bad.pk].state) == ("sent", "failed")
    assert all(r.updated_at >= synced_at for r in rows.values())

    client = api_client(env, scopes=["metrics:read"])
    listed = client.get("/api/v1/deliveries/", {"updated_since": synced_at.isoformat()})
    assert {d["id"]: d["state"] for d in listed.json()["results"]} == {
        rows[good.pk].pk: "sent",
        rows[bad.pk].pk: "failed",
    }
    with environment_scope(env):
        now = timezone.now() + timedelta(seconds=1)
        finished_now = delivery_failure_rate(env, synced_at, now)
        planned_then = delivery_failure_rate(env, hour_ago, synced_at)
    assert (finished_now.value, finished_now.sample) == (0.5, 2)
    assert planned_then.value is None  # created in that window, finished in the next


def test_failure_rate__a_sent_row_opened_later__counted_when_it_was_sent(tenant):
    from notifications.selectors import delivery_failure_rate
    from notifications.services import engagement_record
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    sent_at = timezone.now() - timedelta(days=2)
    row = DeliveryFactory(environment=env, state=Delivery.State.SENT, sent_at=sent_at)
    with environment_scope(env):
        Delivery.objects.filter(pk=row.pk).update(updated_at=sent_at)
        engagement_record(environment=env, delivery_id=row.pk, kind="open")
        assert Delivery.objects.get(pk=row.pk).updated_at > sent_at  # the API syncs the open
        that_day = delivery_failure_rate(
            env, sent_at - timedelta(hours=1), sent_at + timedelta(hours=1)
        )
        today = delivery_failure_rate(env, timezone.now() - timedelta(hours=1), timezone.now())
    assert (that_day.sample, today.sample) == (1, 0)


def test_dashboard_delivery_failures__without_test_members__still_counts_officer_deliveries(
    tenant,
):
    # A loan officer's invitation is a Delivery with no member. "Test members excluded"
    # (the dashboard's default) drops test members' deliveries, not the officers'.
    from django.urls import reverse

    from tests.conftest import staff_client
    from tests.factories import MemberFactory, staff_user
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    now = timezone.now()
    DeliveryFactory(environment=env, state=Delivery.State.SENT, sent_at=now)
    DeliveryFactory(
        environment=env,
        member=MemberFactory(environment=env, is_test=True),
        state=Delivery.State.DEAD,
        reason="a test member's: left out",
    )
    DeliveryFactory(
        environment=env,
        member=None,
        recipient_email="officer@cu.test",
        recipient_name="Olive Officer",
        campaign_key="appointment:1:officer",
        template_key="appointment_booked",
        category="appointments",
        state=Delivery.State.DEAD,
        reason="550 mailbox unavailable",
    )
    client = staff_client(staff_user(tenant.institution, "it"), env)
    response = client.get(reverse("admin:flags_dashboard"))
    totals = response.context["delivery_totals"]
    assert (totals["failed"], totals["finished"]) == (1, 2)


@pytest.mark.parametrize(("cohort", "expected"), [("all", 3), ("test", 1), ("non_test", 2)])
def test_delivery_failure_rate__cohorts__a_delivery_without_a_member_is_not_a_test_one(
    tenant, cohort, expected
):
    from notifications.selectors import delivery_failure_rate
    from tests.factories import MemberFactory
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    now = timezone.now()
    DeliveryFactory(environment=env, sent_at=now)
    DeliveryFactory(
        environment=env, member=MemberFactory(environment=env, is_test=True), sent_at=now
    )
    DeliveryFactory(environment=env, member=None, recipient_email="officer@cu.test", sent_at=now)
    with environment_scope(env):
        measured = delivery_failure_rate(
            env, now - timedelta(minutes=1), now + timedelta(minutes=1), cohort=cohort
        )
    assert measured.sample == expected
