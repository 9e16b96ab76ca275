"""Factories of the notifications models (registered for the generic tenancy tests)."""

from __future__ import annotations

import factory

from notifications.channels.push import vapid_key_generate
from notifications.defaults import DEFAULT_TEMPLATES
from notifications.models import (
    ConsentRecord,
    Delivery,
    Journey,
    JourneyProgress,
    MessageTemplate,
    NotificationProfile,
    NotificationSettings,
    Preference,
    PushSubscription,
    VapidKey,
)
from tests.factories import MemberFactory, TenantFactory, tenant_factory

P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"


def _member(o):
    return MemberFactory(environment=o.environment)


@tenant_factory(Delivery)
class DeliveryFactory(TenantFactory):
    class Meta:
        model = Delivery

    member = factory.LazyAttribute(_member)
    campaign_key = factory.Sequence(lambda n: f"home_value:2026-{n % 12 + 1:02d}-{n}")
    template_key = "home_value"
    category = "home_value"
    channel = "email"
    state = Delivery.State.SENT


@tenant_factory(MessageTemplate)
class MessageTemplateFactory(TenantFactory):
    class Meta:
        model = MessageTemplate

    key = factory.Sequence(lambda n: f"custom-{n}")
    name = factory.Sequence(lambda n: f"Custom template {n}")
    category = "offers"
    subject = "Hello {{ member.first_name }}"
    text_body = "Text for {{ member.first_name }}"
    html_body = "<p>HTML for {{ member.first_name }}</p>"
    push_title = "Hi"
    push_body = "Body"
    push_link = "/"


def template_factory(environment, key: str, **overrides) -> MessageTemplate:
    return MessageTemplateFactory(
        environment=environment, key=key, **{**DEFAULT_TEMPLATES.get(key, {}), **overrides}
    )


@tenant_factory(Journey)
class JourneyFactory(TenantFactory):
    class Meta:
        model = Journey

    name = factory.Sequence(lambda n: f"Journey {n}")
    trigger = Journey.Trigger.OFFER_SAVED
    steps = factory.LazyFunction(
        lambda: [{"type": "send", "template": "offer_summary", "channel": "email"}]
    )
    exit_conditions = factory.LazyFunction(lambda: ["offer_selected"])
    active = True


@tenant_factory(JourneyProgress)
class JourneyProgressFactory(TenantFactory):
    class Meta:
        model = JourneyProgress

    journey = factory.LazyAttribute(lambda o: JourneyFactory(environment=o.environment))
    member = factory.LazyAttribute(_member)


@tenant_factory(NotificationProfile)
class NotificationProfileFactory(TenantFactory):
    class Meta:
        model = NotificationProfile

    member = factory.LazyAttribute(_member)


@tenant_factory(NotificationSettings)
class NotificationSettingsFactory(TenantFactory):
    class Meta:
        model = NotificationSettings


@tenant_factory(Preference)
class PreferenceFactory(TenantFactory):
    class Meta:
        model = Preference

    member = factory.LazyAttribute(_member)
    category = "offers"
    channel = "email"
    enabled = False


@tenant_factory(ConsentRecord)
class ConsentRecordFactory(TenantFactory):
    class Meta:
        model = ConsentRecord

    member = factory.LazyAttribute(_member)
    category = "offers"
    channel = "email"
    granted = False
    method = ConsentRecord.Method.PREFERENCES
    text_shown = "Stop sending me offers and rate alerts by email."


@tenant_factory(PushSubscription)
class PushSubscriptionFactory(TenantFactory):
    class Meta:
        model = PushSubscription

    member = factory.LazyAttribute(_member)
    endpoint = factory.Sequence(lambda n: f"https://push.example.test/sub/{n}")
    p256dh = P256DH
    auth = AUTH


@tenant_factory(VapidKey)
def vapid_factory(environment, **kwargs) -> VapidKey:
    from institutions.tenancy import environment_scope

    with environment_scope(environment):
        return vapid_key_generate(environment=environment)
