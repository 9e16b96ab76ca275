"""Demo data: the built-in templates, a journey, notification settings and preferences."""

from datetime import time
from decimal import Decimal

from homes.demo import demo_members_of
from institutions.demo import DemoReport, register_demo_step
from institutions.models import Institution
from institutions.tenancy import environment_scope
from notifications.channels.push import vapid_key_generate
from notifications.defaults import DEFAULT_TEMPLATES
from notifications.models import ConsentRecord, Journey, MessageTemplate, NotificationSettings
from notifications.services import preference_set, profile_update

DEMO_JOURNEY = {
    "name": "Saved an offer, not yet selected",
    "trigger": Journey.Trigger.OFFER_SAVED,
    "steps": [
        {"type": "wait", "days": 2},
        {"type": "send", "template": "offer_summary", "channel": "email"},
        {"type": "wait", "days": 5},
        {"type": "condition", "check": "opened_last", "otherwise": "exit"},
        {"type": "send", "template": "offer_summary", "channel": "push"},
    ],
    "exit_conditions": ["offer_selected", "unsubscribed", "opted_out"],
    "active": True,
}


def demo_notifications(institution: Institution, report: DemoReport) -> None:
    for environment in institution.environments.all():
        with environment_scope(environment):
            for key, spec in DEFAULT_TEMPLATES.items():
                MessageTemplate.objects.get_or_create(
                    environment=environment, key=key, defaults=dict(spec)
                )
            Journey.objects.get_or_create(
                environment=environment, name=DEMO_JOURNEY["name"], defaults=DEMO_JOURNEY
            )
            members = list(demo_members_of(environment))
            NotificationSettings.objects.get_or_create(
                environment=environment,
                defaults={
                    "quiet_start": time(21, 0),
                    "quiet_end": time(8, 0),
                    "market_rate": Decimal("5.875"),
                    # staging: one allowlisted test inbox; every other address goes to the sink
                    "test_addresses": [members[0].email]
                    if environment.is_staging and members
                    else [],
                },
            )
            vapid_key_generate(environment=environment)
            demo_consent = ConsentRecord.objects.filter(
                environment=environment, method=ConsentRecord.Method.DEMO
            )
            if len(members) >= 2 and not demo_consent.exists():  # once, for the demo's members
                preference_set(
                    environment=environment,
                    member=members[-1],
                    category="offers",
                    channel="email",
                    enabled=False,
                    method=ConsentRecord.Method.DEMO,
                )
                profile_update(
                    environment=environment, member=members[-2], digest_frequency="quarterly"
                )
            report.add(
                f"  notifications ({environment.kind}): {len(DEFAULT_TEMPLATES)} templates, "
                f"1 journey; preferences at {environment.base_url}/notifications/preferences/"
            )


register_demo_step(demo_notifications, order=40)
