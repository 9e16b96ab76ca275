"""Flags and data plans under releases: a guarded rollout changes production flags and a
release from staging must not undo it; a released data plan is in force at once."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from flags import plans
from flags.models import Event, Flag
from flags.services.events import event_record_many
from flags.services.flags import flag_delete, flag_save
from flags.services.plans import data_plan_version_create
from flags.services.rollouts import rollout_advance, rollout_start
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from releases.models import Release
from releases.services import ReleaseRefused, release_deploy, release_rollback
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.flags.factories import DestinationFactory, FlagFactory, OracleRuleFactory
from tests.flags.test_rollouts import traffic
from tests.releases.test_release_flow import approved

NAME = "offer_card_v2"


@pytest.fixture
def people(tenant):
    inst = tenant.institution
    return SimpleNamespace(
        marketing=staff_user(inst, "marketing", email="mara@cu.test"),
        it=staff_user(inst, "it", email="ivan@cu.test"),
        lending=staff_user(inst, "lending", email="lena@cu.test"),
        marketing2=staff_user(inst, "marketing", email="mo@cu.test"),
        admin=staff_user(inst, "admin", email="ada@cu.test"),
    )


@pytest.fixture
def rollout(tenant, people):
    """The flag, the same in both environments (released earlier), rolling out in production."""
    FlagFactory(environment=tenant.staging, name=NAME, test_cohort=True)
    production = tenant.production
    with environment_scope(production):
        OracleRuleFactory(environment=production, group="rollout", name="5xx")
        flag = FlagFactory(environment=production, name=NAME, test_cohort=True)
        return rollout_start(
            environment=production,
            flag=flag,
            actor=people.admin,
            steps=["test", 25, "everyone"],
            step_minutes=10,
        )


def advance(tenant, rollout) -> str:
    with environment_scope(tenant.production):
        rollout.refresh_from_db()
        traffic(
            tenant.production,
            count=300,
            errors=0,
            at=rollout.step_started_at + timedelta(minutes=1),
        )
        now = rollout.step_started_at + timedelta(minutes=11)
        return rollout_advance(environment=tenant.production, rollout=rollout, now=now)


def targeting(environment) -> tuple:
    with environment_scope(environment):
        flag = Flag.objects.get(name=NAME)
    return (flag.everyone, None if flag.percent is None else float(flag.percent), flag.test_cohort)


def deploy(tenant, people, release):
    return release_deploy(
        environment=tenant.staging, release=release, actor=people.admin, reason="tonight's fixes"
    )


@pytest.mark.django_db
def test_rollout_step__in_production__is_written_to_staging_and_audited_there(tenant, rollout):
    assert advance(tenant, rollout) == "advanced"
    assert targeting(tenant.production) == targeting(tenant.staging) == (None, 25.0, True)
    with environment_scope(tenant.staging):
        entry = AuditEntry.objects.filter(
            environment=tenant.staging, object_type="flags.Flag", reason__contains="follows"
        ).latest("id")
    assert entry.actor_label == f"rollout {rollout.pk}"
    assert entry.changes["percent"] == {"before": None, "after": "25"}


@pytest.mark.django_db
def test_release_after_a_rollout_step__deploys_and_keeps_the_flag_at_the_step(
    tenant, rollout, people
):
    assert advance(tenant, rollout) == "advanced"
    release = approved(tenant, people)  # an unrelated marketing change, made afterwards
    assert [e for e in release.diff if e["model"] == "flags.Flag"] == []
    deploy(tenant, people, release)
    assert targeting(tenant.production) == (None, 25.0, True)


@pytest.mark.django_db
def test_release_made_before_a_rollout_step__stops_and_production_keeps_the_step(
    tenant, rollout, people
):
    release = approved(tenant, people)  # snapshot while the rollout is at "test"
    assert advance(tenant, rollout) == "advanced"
    with pytest.raises(ReleaseRefused):
        deploy(tenant, people, release)
    release.refresh_from_db()
    assert release.state in (Release.State.SUPERSEDED, Release.State.CONFLICT)
    assert targeting(tenant.production) == (None, 25.0, True)


@pytest.mark.django_db
def test_staging_edit__during_a_production_rollout__targeting_refused_note_allowed(
    tenant, rollout, people
):
    staging = tenant.staging
    with environment_scope(staging):
        flag = Flag.objects.get(name=NAME)
        flag.percent = 90
        with pytest.raises(ValidationError, match="rolled out in production"):
            flag_save(environment=staging, flag=flag, actor=people.admin)
        flag = Flag.objects.get(name=NAME)
        flag.name = "offer_card_v3"
        with pytest.raises(ValidationError, match="rolled out in production"):
            flag_save(environment=staging, flag=flag, actor=people.admin)
        with pytest.raises(ValidationError, match="rolled out in production"):
            flag_delete(environment=staging, flag=Flag.objects.get(name=NAME), actor=people.admin)
        flag = Flag.objects.get(name=NAME)
        flag.note = "Copy reviewed by compliance."
        flag_save(environment=staging, flag=flag, actor=people.admin)
    assert targeting(staging) == (None, None, True)
    assert advance(tenant, rollout) == "advanced"
    assert advance(tenant, rollout) == "advanced"
    assert advance(tenant, rollout) == "completed"
    assert targeting(staging) == targeting(tenant.production) == (True, None, True)
    with environment_scope(staging):  # the rollout is over: staging owns the flag again
        flag = Flag.objects.get(name=NAME)
        flag.everyone = None
        flag_save(environment=staging, flag=flag, actor=people.admin)


@pytest.mark.django_db
def test_flag_admin__staging_targeting_during_a_production_rollout__form_says_why(
    tenant, rollout, people
):
    """The staff member is shown why on the form, not a bare "403 Forbidden" page that
    names no reason and drops the edit; nothing is saved."""
    with environment_scope(tenant.staging):
        flag = Flag.objects.get(name=NAME)
    client = staff_client(people.admin, tenant.staging)
    client.raise_request_exception = False
    response = client.post(
        reverse("admin:flags_flag_change", args=[flag.pk]),
        {
            "name": NAME,
            "note": "New card.",
            "everyone": "unknown",
            "percent": "50",
            "test_cohort": "on",
        },
    )
    assert response.status_code == 200
    assert "rolled out in production" in str(response.context["adminform"].form.non_field_errors())
    assert targeting(tenant.staging) == (None, None, True)


@pytest.mark.django_db
def test_flag_admin__deleting_the_staging_flag_during_a_production_rollout__says_why(
    tenant, rollout, people
):
    with environment_scope(tenant.staging):
        flag = Flag.objects.get(name=NAME)
    client = staff_client(people.admin, tenant.staging)
    client.raise_request_exception = False
    response = client.post(reverse("admin:flags_flag_delete", args=[flag.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert response.url == reverse("admin:flags_flag_change", args=[flag.pk])
    page = client.get(response.url)
    assert "rolled out in production" in page.content.decode()
    with environment_scope(tenant.staging):
        assert Flag.objects.filter(pk=flag.pk).exists()


@pytest.mark.django_db
def test_rollout_start__staging_lacks_the_flag__is_refused(tenant, people):
    production = tenant.production
    with environment_scope(production):
        flag = FlagFactory(environment=production, name="only_in_production")
        with pytest.raises(ValidationError, match="Staging has no flag"):
            rollout_start(environment=production, flag=flag, actor=people.admin)


def _custom_event(production):
    with environment_scope(production):
        (event,) = event_record_many(
            environment=production, rows=[{"name": "custom_event"}], source="server"
        )
    return event.plan_version, event.disposition


@pytest.mark.django_db
def test_data_plan__deployed_then_rolled_back__in_force_at_once_each_time(tenant, people):
    # The admin is read-only for plans in production: releases are their only way in, and
    # a deploy writes the rows itself, past the plan service.
    production = tenant.production
    with environment_scope(production):
        assert plans.active_plan(production).version is None  # cached from here on
    with environment_scope(tenant.staging):
        data_plan_version_create(
            environment=tenant.staging,
            points={"custom_event": {"description": "A custom event", "schema": {}}},
            actor=people.marketing,
            unplanned="quarantine",
        )
    release = approved(tenant, people)
    release_deploy(environment=tenant.staging, release=release, actor=people.admin, reason="go")
    assert _custom_event(production) == (1, Event.Disposition.ACCEPTED)
    release_rollback(
        environment=tenant.staging, release=release, actor=people.admin, reason="plan too strict"
    )
    assert _custom_event(production) == (None, Event.Disposition.ACCEPTED)
    with environment_scope(production):
        assert plans.active_plan(production).version is None


@pytest.mark.django_db
def test_webhook__promoted_without_its_secret__waits_visibly_until_production_sets_one(
    tenant, people
):
    from django.urls import reverse

    from flags.models import Destination
    from flags.services import destinations
    from institutions import events
    from tests.conftest import staff_client
    from tests.factories import MemberFactory
    from tests.flags.test_destinations import Receiver

    production = tenant.production
    member = MemberFactory(environment=production)
    with Receiver() as receiver:
        DestinationFactory(
            environment=tenant.staging, name="crm", url=receiver.url, secret="staging", enabled=True
        )
        release = approved(tenant, people)
        release_deploy(environment=tenant.staging, release=release, actor=people.admin, reason="go")
        events.emit(environment=production, name="offer_viewed", member=member, properties={})
        later = timezone.now() + timedelta(minutes=5)
        with environment_scope(production):
            webhook = Destination.objects.get(name="crm")
            assert (webhook.enabled, webhook.secret) == (True, "")
            assert destinations.destinations_forward(environment=production, now=later) == {
                "sent": 0,
                "failed": 1,
            }
            webhook.refresh_from_db()
        assert receiver.bodies == []  # nothing signed with an empty key
        assert (webhook.state, webhook.cursor) == ("failing", 0)
        assert webhook.last_error == destinations.UNSIGNED_ERROR
        # In production the admin sets the secret, and nothing else: the rest came by release.
        admin = staff_client(people.admin, production)
        url = reverse("admin:flags_destination_change", args=[webhook.pk])
        form = admin.get(url).content.decode()
        assert 'name="secret"' in form
        assert 'name="url"' not in form
        assert admin.get(reverse("admin:flags_destination_add")).status_code == 403
        response = admin.post(url, {"secret": "production-key", "url": "https://evil.example/"})
        assert response.status_code == 302
        with environment_scope(production):
            webhook.refresh_from_db()
            assert (webhook.url, webhook.secret) == (receiver.url, "production-key")
            assert destinations.destinations_forward(environment=production, now=later) == {
                "sent": 1,
                "failed": 0,
            }
    headers, body = receiver.bodies[0]
    assert json.loads(body)["events"][0]["member_id"] == member.pk
    timestamp = headers["X-Chimney-Signature"].split(",")[0][2:]
    assert headers["X-Chimney-Signature"] == destinations.sign(
        "production-key", int(timestamp), body
    )


@pytest.mark.django_db
def test_flag_admin__bulk_delete_including_a_flag_in_production_rollout__nothing_deleted(
    tenant, rollout, people
):
    with environment_scope(tenant.staging):
        flag = Flag.objects.get(name=NAME)
        other = FlagFactory(environment=tenant.staging, name="another_flag")
    client = staff_client(people.admin, tenant.staging)
    response = client.post(
        reverse("admin:flags_flag_changelist"),
        {"action": "delete_selected", "_selected_action": [flag.pk, other.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing deleted." in page
    assert "rolled out in production" in page
    with environment_scope(tenant.staging):
        assert Flag.objects.filter(pk__in=[flag.pk, other.pk]).count() == 2
    # Without the flag under rollout, the others go as usual.
    client.post(
        reverse("admin:flags_flag_changelist"),
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    with environment_scope(tenant.staging):
        assert not Flag.objects.filter(pk=other.pk).exists()
