"""Email through a real local SMTP server: branded multipart, RFC 8058 headers, the outbox."""

from __future__ import annotations

import pytest
from django.core import mail

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
