"""The notifications admin: template preview, retry of dead deliveries, VAPID keys, journeys."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from notifications.models import (
    Delivery,
    Journey,
    MessageTemplate,
    NotificationSettings,
    VapidKey,
)
from tests.conftest import staff_client
from tests.factories import MemberFactory, staff_user
from tests.notifications.factories import (
    DeliveryFactory,
    JourneyFactory,
    JourneyProgressFactory,
    PushSubscriptionFactory,
    template_factory,
)
from tests.notifications.helpers import deliveries

pytestmark = pytest.mark.django_db


def template_form(**overrides) -> dict:
    data = {
        "key": "spring-offer",
        "name": "Spring offer",
        "category": "offers",
        "subject": "{{ member.first_name }}, your home is worth {{ home.value_display }}",
        "text_body": "Hello {{ member.first_name }}, {{ home.address }}.",
        "html_body": "<p>Hello {{ member.first_name }} at {{ home.address }}</p>",
        "push_title": "Spring offer",
        "push_body": "For {{ home.address }}",
        "push_link": "/offers/",
    }
    return {**data, **overrides}


def test_template_admin__change_page__previews_with_the_sample_test_member(tenant):
    env = tenant.staging
    MemberFactory(environment=env, first_name="Tess", is_test=True)
    template = template_factory(env, **template_form())
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    url = reverse("admin:notifications_messagetemplate_change", args=[template.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Tess, your home is worth $412,000" in html  # subject, sample home
    assert "Hello Tess, 12 Sample Lane." in html  # text body
    assert "For 12 Sample Lane" in html  # push body
    assert tenant.institution.postal_address in html  # inside the branded layout


def test_template_admin__template_that_does_not_render__form_error_and_unchanged(tenant):
    env = tenant.staging
    template = template_factory(env, **template_form())
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    url = reverse("admin:notifications_messagetemplate_change", args=[template.pk])
    response = client.post(url, template_form(subject="Hi {% if member %}unclosed"))
    assert response.status_code == 200
    assert "The template does not render" in response.content.decode()
    with environment_scope(env):
        assert MessageTemplate.objects.get(pk=template.pk).subject == template.subject

    response = client.post(url, template_form(subject="Fresh words for {{ member.first_name }}"))
    assert response.status_code == 302
    with environment_scope(env):
        assert MessageTemplate.objects.get(pk=template.pk).subject.startswith("Fresh words")


def test_template_admin__production__read_only_for_marketing(tenant):
    env = tenant.production
    template = template_factory(env, **template_form())
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    url = reverse("admin:notifications_messagetemplate_change", args=[template.pk])
    assert client.get(url).status_code == 200  # viewable, with its preview
    client.post(url, template_form(subject="Changed in production"))
    with environment_scope(env):
        assert MessageTemplate.objects.get(pk=template.pk).subject == template.subject


def retry(client, ids):
    return client.post(
        reverse("admin:notifications_delivery_changelist"),
        {"action": "retry", "_selected_action": [str(i) for i in ids]},
        follow=True,
    )


def test_delivery_admin__retry_dead__sends_again_audited__sent_rows_untouched(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.production
    common = {"template_key": "welcome_1", "category": "account", "campaign_key": "welcome_1"}
    dead = DeliveryFactory(
        environment=env, state="dead", attempts=5, reason="gave up after 5 attempts", **common
    )
    sent = DeliveryFactory(environment=env, state="sent", **{**common, "campaign_key": "w"})
    user = staff_user(tenant.institution, "it")
    client = staff_client(user, env)
    log = client.get(reverse("admin:notifications_delivery_changelist"))
    assert "gave up after 5 attempts" in log.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = retry(client, [dead.pk, sent.pk])
    assert "1 deliveries queued again." in response.content.decode()
    (after,) = deliveries(env, pk=dead.pk)
    assert (after.state, after.attempts) == ("sent", 1)
    assert deliveries(env, pk=sent.pk)[0].state == "sent"
    assert [m.to for m in mail.outbox] == [[dead.member.email]]
    with environment_scope(env):
        entry = AuditEntry.objects.get(object_type="notifications.Delivery")
    assert (entry.object_id, entry.actor_id, entry.reason) == (str(dead.pk), user.pk, "retry")


def test_delivery_admin__lending_role__cannot_retry(tenant):
    env = tenant.production
    dead = DeliveryFactory(environment=env, state="dead")
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    page = client.get(reverse("admin:notifications_delivery_changelist"))
    assert page.status_code == 200
    assert 'value="retry"' not in page.content.decode()
    retry(client, [dead.pk])
    assert deliveries(env, pk=dead.pk)[0].state == Delivery.State.DEAD


def test_vapid_admin__generate__stores_private_key_encrypted__shows_public__once(tenant):
    env = tenant.staging
    user = staff_user(tenant.institution, "it")
    client = staff_client(user, env)
    add = reverse("admin:notifications_vapidkey_add")
    response = client.post(add, {}, follow=True)
    assert response.status_code == 200
    with environment_scope(env):
        key = VapidKey.objects.get()
        assert AuditEntry.objects.filter(
            object_type__iexact="notifications.vapidkey", action=AuditEntry.Action.CREATE
        ).exists()
    assert len(key.public_key) == 87  # 65-byte uncompressed P-256 point, base64url
    assert key.public_key in response.content.decode()
    assert "BEGIN PRIVATE KEY" in key.private_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM notifications_vapidkey WHERE id = %s", [key.pk])
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored
    assert "PRIVATE KEY" not in response.content.decode()

    assert client.get(add).status_code == 403  # one key per environment
    client.post(add, {})
    with environment_scope(env):
        assert VapidKey.objects.count() == 1


def test_journey_admin__bad_steps__field_errors__nothing_saved(tenant):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    response = client.post(
        reverse("admin:notifications_journey_add"),
        {
            "name": "Broken",
            "trigger": "offer_saved",
            "threshold_pct": "5.00",
            "steps": '[{"type": "wait"}, {"type": "send", "channel": "fax"}, {"type": "teleport"}]',
            "exit_conditions": '["bored"]',
            "active": "on",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "step 1: a wait needs positive whole days or hours" in page
    assert "step 2: a send needs a template key" in page
    assert "step 3: type must be wait, send or condition" in page
    assert "unknown exit conditions" in page
    with environment_scope(env):
        assert not Journey.objects.exists()


def journey_form(**overrides) -> dict:
    return {
        "name": "Welcome",
        "trigger": "offer_saved",
        "threshold_pct": "5.00",
        "steps": '[{"type": "wait", "days": 1}]',
        "exit_conditions": '["offer_selected"]',
        "active": "on",
        "progress-TOTAL_FORMS": "0",
        "progress-INITIAL_FORMS": "0",
        **overrides,
    }


@pytest.mark.parametrize(
    ("exit_conditions", "error"),
    [
        ("5", "Give a list of exit conditions"),
        ("true", "Give a list of exit conditions"),
        ('{"offer_selected": true}', "Give a list of exit conditions"),
        ('"opted_out"', 'Give a list, e.g. ["opted_out"], not the text'),
    ],
)
def test_journey_admin__exit_conditions_not_a_list__is_a_form_error_not_a_500(
    tenant, exit_conditions, error
):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    client.raise_request_exception = False
    response = client.post(
        reverse("admin:notifications_journey_add"),
        journey_form(exit_conditions=exit_conditions),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["exit_conditions"]
    (message,) = errors["exit_conditions"]  # one message, not one per character
    assert message.startswith(error)
    with environment_scope(env):
        assert not Journey.objects.exists()


def test_journey_admin__exit_conditions_left_empty__saved_as_no_conditions(tenant):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    response = client.post(
        reverse("admin:notifications_journey_add"), journey_form(exit_conditions="")
    )
    assert response.status_code == 302
    with environment_scope(env):
        assert Journey.objects.get().exit_conditions == []


def settings_form(**overrides) -> dict:
    data = {
        "from_email": "",
        "test_addresses": '["qa@bank.example"]',
        "quiet_start": "",
        "quiet_end": "",
        "market_rate": "",
        "refinance_threshold": "0.750",
        "unopened_limit": "3",
    }
    return {**data, **overrides}


@pytest.mark.parametrize(
    "test_addresses",
    [
        pytest.param('"qa@bank.example"', id="one-address-not-in-a-list"),
        pytest.param('["qa@bank.example", 42]', id="a-number-among-the-addresses"),
        pytest.param('["qa at bank"]', id="not-an-address"),
    ],
)
def test_notification_settings_admin__test_addresses_not_a_list_of_addresses__form_error(
    tenant, test_addresses
):
    """The staging allowlist must be a list of email addresses: anything else is shown
    as a form error and not saved."""
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "it"), env)
    response = client.post(
        reverse("admin:notifications_notificationsettings_add"),
        settings_form(test_addresses=test_addresses),
    )
    assert response.status_code == 200  # the form again, with the error
    assert list(response.context["adminform"].form.errors) == ["test_addresses"]
    with environment_scope(env):
        assert not NotificationSettings.objects.filter(environment=env).exists()


def test_notification_settings_admin__test_addresses__saved_in_lower_case(tenant):
    """Allowlisted addresses are compared without case: they are kept as the sending
    compares them, once each."""
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "it"), env)
    response = client.post(
        reverse("admin:notifications_notificationsettings_add"),
        settings_form(test_addresses='[" QA@Bank.example", "qa@bank.example", "b@x.test"]'),
    )
    assert response.status_code == 302
    with environment_scope(env):
        saved = NotificationSettings.objects.get(environment=env)
    assert saved.test_addresses == ["qa@bank.example", "b@x.test"]


def test_journey_changelist__queries_do_not_grow_with_journeys(tenant):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    url = reverse("admin:notifications_journey_changelist")
    progress = JourneyProgressFactory(environment=env)
    JourneyProgressFactory(environment=env, journey=progress.journey, state="exited")

    def count():
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
            assert response.status_code == 200
        return len(ctx.captured_queries), response

    one, response = count()
    shown = response.context["cl"].result_list
    assert [j.active_count for j in shown] == [1]  # the exited member is not counted
    for _ in range(5):
        JourneyFactory(environment=env)
    six, _ = count()
    assert six == one, f"{one} queries for 1 journey, {six} for 6"


def test_journey_admin__change_page__shows_each_members_progress(tenant):
    env = tenant.staging
    progress = JourneyProgressFactory(environment=env, step_index=2)
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    page = client.get(reverse("admin:notifications_journey_change", args=[progress.journey_id]))
    assert page.status_code == 200
    assert str(progress.member) in page.content.decode()
    listing = client.get(reverse("admin:notifications_journey_changelist")).content.decode()
    assert progress.journey.name in listing


def test_vapid_key_page__nothing_to_save__no_second_create_in_the_audit_trail(tenant):
    environment = tenant.staging
    client = staff_client(staff_user(tenant.institution, "it"), environment)
    assert client.post(reverse("admin:notifications_vapidkey_add"), {}).status_code == 302
    with environment_scope(environment):
        key = VapidKey.objects.get(environment=environment)
    url = reverse("admin:notifications_vapidkey_change", args=[key.pk])
    assert client.get(url).status_code == 200  # to look at
    client.post(url, {})
    entries = AuditEntry.objects.filter(object_type="notifications.VapidKey", object_id=str(key.pk))
    assert [e.action for e in entries] == ["create"]


def test_push_subscription_page__keys_not_shown(tenant):
    subscription = PushSubscriptionFactory(
        environment=tenant.production, p256dh="BPublicKeyOfTheBrowser42", auth="authsecret-77"
    )
    client = staff_client(staff_user(tenant.institution, "admin"), tenant.production)
    page = client.get(
        reverse("admin:notifications_pushsubscription_change", args=[subscription.pk])
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert subscription.endpoint in text
    assert "authsecret-77" not in text
    assert "BPublicKeyOfTheBrowser42" not in text
