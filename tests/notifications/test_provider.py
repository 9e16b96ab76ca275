"""A provider API (django-anymail) and local sinks: each message's outcome is its own, a
delivery is sent only once its message was handed over, and the provider's bounce and
complaint webhooks fail the delivery and stop mail to the address."""

from __future__ import annotations

import base64
import json

import pytest
from django.core import checks, mail
from django.test import Client

from chimney.checks import provider_webhook_secret_check
from institutions.tenancy import environment_scope
from notifications.models import ConsentRecord, Delivery, NotificationProfile, Preference
from notifications.services.sending import deliveries_send, deliveries_send_claimed
from tests.notifications.esp import Halt
from tests.notifications.helpers import deliveries, members, planned, reclaimed, run_campaign

pytestmark = pytest.mark.django_db

SECRET = "postmark:s3cret-webhook"


@pytest.fixture
def provider(settings):
    settings.EMAIL_BACKEND = "tests.notifications.esp.ProviderBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    mail.outbox = []
    return mail.outbox


def by_email(env) -> dict[str, Delivery]:
    with environment_scope(env):
        return {d.member.email: d for d in Delivery.objects.select_related("member")}


def test_provider__each_message_recorded_from_its_own_answer__none_stops_the_rest(
    tenant, provider, django_capture_on_commit_callbacks
):
    env = tenant.production
    people = [
        members(env, 1, email=address)[0]
        for address in ("ok1@x.test", "down@x.test", "refused@x.test", "queued@x.test")
    ]
    people += members(env, 1, email="ok2@x.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)

    rows = by_email(env)
    for address in ("ok1@x.test", "ok2@x.test", "queued@x.test"):
        assert rows[address].state == Delivery.State.SENT, rows[address].reason
    sent = {m.to[0]: m for m in provider}
    # The provider's id is kept, and the message carried the delivery for its webhooks.
    ok1 = rows["ok1@x.test"]
    assert ok1.provider_message_id == str(provider.index(sent["ok1@x.test"]))
    assert sent["ok1@x.test"].anymail_test_params["metadata"] == {"chimney_delivery": str(ok1.pk)}
    assert rows["queued@x.test"].provider_message_id == "esp-queued@x.test"
    # An API failure is retried later; a refused address fails and is not used again.
    down = rows["down@x.test"]
    assert (down.state, down.attempts) == (Delivery.State.PENDING, 1)
    assert "503" in down.last_error
    refused = rows["refused@x.test"]
    assert refused.state == Delivery.State.FAILED
    assert refused.reason.startswith("rejected by the provider")
    with environment_scope(env):
        profile = NotificationProfile.objects.get(member__email="refused@x.test")
    assert profile.email_bounced_at is not None


def test_provider__worker_slower_than_its_lease__sends_nothing_once_reclaimed(
    tenant, provider, django_capture_on_commit_callbacks
):
    """Through a provider's API, a claim the sweeper released is not sent by its old
    worker: each member gets the update once."""
    env = tenant.production
    people = members(env, 2)
    ids = planned(django_capture_on_commit_callbacks, env, "home_value", people)
    slow, fresh = reclaimed(django_capture_on_commit_callbacks, env, ids)
    with environment_scope(env):
        assert deliveries_send_claimed(environment=env, claimed=fresh).sent == 2
        late = deliveries_send_claimed(environment=env, claimed=slow)

    # Each member got the month's update once; the slow worker sent nothing more.
    assert sorted(m.to[0] for m in provider) == sorted(p.email for p in people)
    assert late.sent == 0
    assert {d.state for d in deliveries(env)} == {Delivery.State.SENT}


def test_local_sink__a_failing_write__fails_that_delivery_only(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.notifications.esp.LocalSinkBackend"
    env = tenant.production
    people = [
        members(env, 1, email=address)[0] for address in ("a@x.test", "explode@x.test", "b@x.test")
    ]
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", people)
    rows = by_email(env)
    assert rows["a@x.test"].state == rows["b@x.test"].state == Delivery.State.SENT
    assert rows["explode@x.test"].state == Delivery.State.PENDING
    assert "disk full" in rows["explode@x.test"].last_error
    assert sorted(m.to[0] for m in mail.outbox) == ["a@x.test", "b@x.test"]


def test_local_sink__batch_stopped_midway__written_are_sent__the_rest_not(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.notifications.esp.LocalSinkBackend"
    env = tenant.production
    people = [
        members(env, 1, email=address)[0]
        for address in ("a@x.test", "halt@x.test", "b@x.test", "c@x.test")
    ]
    with django_capture_on_commit_callbacks(execute=False), environment_scope(env):
        from notifications.services.campaigns import campaign_enqueue_members

        campaign_enqueue_members(
            environment=env,
            campaign="home_value",
            period="2026-05",
            member_ids=[m.pk for m in people],
        )
    ids = [d.pk for d in deliveries(env)]
    with environment_scope(env), pytest.raises(Halt):
        deliveries_send(environment=env, delivery_ids=ids)
    rows = by_email(env)
    assert rows["a@x.test"].state == Delivery.State.SENT  # written before the stop
    assert rows["halt@x.test"].state == Delivery.State.SENDING  # the sweeper's, after the lease
    for address in ("b@x.test", "c@x.test"):  # never written: pending for the task's retry
        assert rows[address].state == Delivery.State.PENDING
        assert rows[address].reason == "released: its batch stopped at an error"
    assert [m.to[0] for m in mail.outbox] == ["a@x.test"]


def postmark(env, payload: dict, secret: str = SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return Client(HTTP_HOST=env.host).post(
        "/notifications/esp/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def bounce(delivery: Delivery, **changes) -> dict:
    """Postmark's bounce webhook, as its documentation shows it."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "home_value",
        "MessageID": delivery.provider_message_id,
        "Metadata": {"chimney_delivery": str(delivery.pk)},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": delivery.member.email,
        "From": "news@cascade.example",
        "BouncedAt": "2026-05-01T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your home is worth about $412,000",
        **changes,
    }


def test_webhook__bounce__fails_the_delivery_and_stops_mail_to_the_address(
    tenant, provider, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1, email="gone@x.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (sent,) = deliveries(env)
    assert sent.state == Delivery.State.SENT

    assert postmark(env, bounce(sent)).status_code == 200
    assert postmark(env, bounce(sent)).status_code == 200  # providers retry: same outcome

    (row,) = deliveries(env)
    assert row.state == Delivery.State.FAILED
    assert row.reason.startswith("bounced: The server was unable to deliver")
    assert "550 5.1.1" in row.last_error
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member])
    later = deliveries(env, campaign_key="offer_summary:2026-05")[0]
    assert later.state == Delivery.State.SUPPRESSED
    assert later.reason.startswith("email address bounced")


def test_webhook__found_by_message_id_without_metadata(
    tenant, provider, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1, email="gone@x.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (sent,) = deliveries(env)
    assert postmark(env, bounce(sent, Metadata={})).status_code == 200
    assert deliveries(env)[0].state == Delivery.State.FAILED


def test_webhook__spam_complaint__stops_marketing_email_with_a_consent_record(
    tenant, provider, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1, email="annoyed@x.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (sent,) = deliveries(env)
    complaint = bounce(
        sent,
        RecordType="SpamComplaint",
        Type="SpamComplaint",
        TypeCode=512,
        Name="Spam complaint",
        Description="",
        Details="Test spam complaint details",
        CanActivate=False,
    )
    assert postmark(env, complaint).status_code == 200

    (row,) = deliveries(env)
    assert row.state == Delivery.State.SENT  # it was delivered; the member objected
    assert row.reason == "Postmark reported a spam complaint: marketing email stopped"
    with environment_scope(env):
        assert set(
            Preference.objects.filter(member=member, enabled=False).values_list(
                "category", "channel"
            )
        ) == {("home_value", "email"), ("offers", "email")}
        record = ConsentRecord.objects.filter(member=member).first()
    assert record.method == ConsentRecord.Method.PROVIDER_FEEDBACK
    assert "spam complaint" in record.text_shown
    run_campaign(django_capture_on_commit_callbacks, env, "offer_summary", [member])
    later = deliveries(env, campaign_key="offer_summary:2026-05")[0]
    assert (later.state, later.reason) == ("suppressed", "member opted out of offers by email")


def test_webhook__wrong_secret__refused_and_nothing_changes(
    tenant, provider, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (sent,) = deliveries(env)
    assert postmark(env, bounce(sent), secret="postmark:guess").status_code == 400
    assert deliveries(env)[0].state == Delivery.State.SENT


def test_webhook__another_tenants_delivery__left_alone(
    tenant, other_tenant, provider, django_capture_on_commit_callbacks
):
    env, other = tenant.production, other_tenant.production
    (member,) = members(other, 1, email="theirs@x.test")
    run_campaign(django_capture_on_commit_callbacks, other, "home_value", [member])
    (theirs,) = deliveries(other)
    assert postmark(env, bounce(theirs)).status_code == 200  # posted to this tenant's host
    (row,) = deliveries(other)
    assert row.state == Delivery.State.SENT
    with environment_scope(other):
        assert not NotificationProfile.objects.filter(email_bounced_at__isnull=False).exists()


@pytest.mark.parametrize("record_type", ["Bounce", "SpamComplaint"])
def test_webhook__no_secret_configured__not_served_and_nothing_changes(
    tenant, provider, settings, django_capture_on_commit_callbacks, record_type
):
    """Without anymail's webhook secret (the default, e.g. email sent over SMTP) anyone could
    post a bounce or complaint naming a member's address: the webhooks are not served."""
    env = tenant.production
    (member,) = members(env, 1, email="pat@x.test")
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (sent,) = deliveries(env)
    settings.ANYMAIL = {}
    event = bounce(sent, RecordType=record_type, Type=record_type, Metadata={})

    response = Client(HTTP_HOST=env.host).post(
        "/notifications/esp/postmark/tracking/",
        data=json.dumps(event),
        content_type="application/json",
    )

    assert response.status_code == 404
    assert deliveries(env)[0].state == Delivery.State.SENT
    with environment_scope(env):
        assert not NotificationProfile.objects.filter(email_bounced_at__isnull=False).exists()
        assert not Preference.objects.filter(member=member, enabled=False).exists()
        assert not ConsentRecord.objects.filter(member=member).exists()


@pytest.mark.parametrize(("debug", "level"), [(False, checks.ERROR), (True, checks.WARNING)])
def test_system_check__provider_without_webhook_secret__reported(settings, debug, level):
    """A provider configured without a webhook secret is an error in production (a warning
    in development), since its bounce and complaint reports would go unheard."""
    settings.DEBUG = debug
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token"}

    (message,) = provider_webhook_secret_check(None)

    assert message.level == level
    assert "WEBHOOK_SECRET" in message.msg


def test_system_check__webhook_secret_set_or_no_provider__nothing_reported(settings):
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "WEBHOOK_SECRET": SECRET}
    assert provider_webhook_secret_check(None) == []
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.ANYMAIL = {}
    assert provider_webhook_secret_check(None) == []
