"""The demo step: built-in templates, a journey, settings, a VAPID key and preferences,
idempotent like `demo_load` itself."""

from __future__ import annotations

import pytest

from homes.demo import demo_external_ids
from homes.models import Member
from homes.services import member_create
from institutions.demo import DemoReport, demo_load
from institutions.models import Institution
from institutions.tenancy import environment_scope
from notifications.defaults import DEFAULT_TEMPLATES
from notifications.demo import DEMO_JOURNEY, demo_notifications
from notifications.models import (
    ConsentRecord,
    Journey,
    MessageTemplate,
    NotificationProfile,
    NotificationSettings,
    Preference,
    VapidKey,
)
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def snapshot(environment) -> dict:
    with environment_scope(environment):
        return {
            "templates": sorted(MessageTemplate.objects.values_list("key", flat=True)),
            "journeys": list(Journey.objects.values_list("name", "active")),
            "vapid": list(VapidKey.objects.values_list("public_key", flat=True)),
            "consents": ConsentRecord.objects.count(),
            "preferences": list(
                Preference.objects.values_list("member_id", "category", "channel", "enabled")
            ),
            "profiles": list(
                NotificationProfile.objects.values_list("member_id", "digest_frequency")
            ),
            "settings": NotificationSettings.objects.get(),
        }


def demo_people(environment, n: int) -> list[Member]:
    """The first n of the members the demo makes, with a member who came in since."""
    MemberFactory(environment=environment, external_id="CORE-1")
    return [
        MemberFactory(environment=environment, external_id=external_id)
        for external_id in demo_external_ids(environment)[:n]
    ]


def test_demo_step__fills_both_environments__and_running_again_changes_nothing(tenant):
    staging_people = demo_people(tenant.staging, 3)
    production_people = demo_people(tenant.production, 3)
    report = DemoReport()
    demo_notifications(tenant.institution, report)
    first = {env.pk: snapshot(env) for env in (tenant.staging, tenant.production)}

    for env, people in ((tenant.staging, staging_people), (tenant.production, production_people)):
        state = first[env.pk]
        assert state["templates"] == sorted(DEFAULT_TEMPLATES)
        assert state["journeys"] == [(DEMO_JOURNEY["name"], True)]
        assert len(state["vapid"]) == 1
        assert state["consents"] == 1
        assert state["preferences"] == [(people[-1].pk, "offers", "email", False)]
        assert state["profiles"] == [(people[-2].pk, "quarterly")]
        assert state["settings"].market_rate is not None
    # Staging reaches one allowlisted inbox; production needs no allowlist.
    assert first[tenant.staging.pk]["settings"].test_addresses == [staging_people[0].email]
    assert first[tenant.production.pk]["settings"].test_addresses == []
    assert any("/notifications/preferences/" in line for line in report.lines)

    demo_notifications(tenant.institution, DemoReport())
    again = {env.pk: snapshot(env) for env in (tenant.staging, tenant.production)}
    for pk, state in again.items():
        assert {k: v for k, v in state.items() if k != "settings"} == {
            k: v for k, v in first[pk].items() if k != "settings"
        }
        assert state["settings"].pk == first[pk]["settings"].pk


def test_demo_load__member_added_since__gets_no_consent_record_or_preference(monkeypatch, tmp_path):
    """On the next `dev.py run` the newest member (whoever it is) has offer emails turned
    off, with a consent record of method "demo" and an audit entry naming the member as the
    actor; the member before them is moved to a quarterly digest. The demo should only ever
    set the preferences of its own members, once."""
    monkeypatch.setenv("CHIMNEY_SALES_CSV", str(tmp_path / "no-sales.csv"))  # quick
    demo_load()
    env = Institution.objects.get(slug="cascade").environments.get(kind="production")
    with environment_scope(env):
        newcomer = member_create(
            environment=env,
            email="newcomer@example.com",
            external_id="CORE-78",
            enrollment=Member.Enrollment.ENROLLED,
            actor_label="integration API",
        )
    demo_load()
    with environment_scope(env):
        assert not ConsentRecord.objects.filter(member=newcomer).exists()
        assert not Preference.objects.filter(member=newcomer).exists()
