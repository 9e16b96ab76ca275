"""Flags and data plans under releases: a guarded rollout changes production flags and a
release from staging must not undo it; a released data plan is in force at once."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

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
from tests.factories import staff_user
from tests.flags.factories import FlagFactory, OracleRuleFactory
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
