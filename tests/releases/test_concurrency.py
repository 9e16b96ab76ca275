"""Release actions at the same moment, on PostgreSQL, each in its own thread and connection:
each release gets its own number (they are MAX + 1 per environment), and writes to
production take turns on its row, so none of them overwrites a change it did not check.
A staging data fill holds staging's row without blocking edits of its configuration."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from homes.models import HomeSettings
from institutions.selectors import environment_branding
from institutions.services import branding_update
from institutions.tenancy import environment_scope
from releases.models import Release
from releases.services import (
    ReleaseRefused,
    policy_for,
    production_emergency_change,
    release_create,
    release_deploy,
    release_rollback,
    release_sign,
)
from releases.services import create as create_module
from releases.services import deploy as deploy_module
from releases.snapshot import capture, snapshot_hash
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.common import lock as staging_lock
from tests.conftest import make_tenant
from tests.factories import MemberFactory, staff_user
from tests.homes.factories import PropertyFactory
from tests.releases.test_release_flow import TUESDAY_23
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_release_create__two_at_once__each_gets_the_next_number(monkeypatch):
    require_postgres()
    tenant = make_tenant()
    author = staff_user(tenant.institution, "marketing")
    policy_for(tenant.institution)
    branding_update(environment=tenant.staging, actor=None, primary_color="#00aa00")
    highest = create_module._max_number

    def slow_highest(environment):
        # Without the lock both threads would read the same MAX during this pause.
        top = highest(environment)
        time.sleep(0.5)
        return top

    monkeypatch.setattr(create_module, "_max_number", slow_highest)
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def run(i):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = release_create(
                environment=tenant.staging, actor=author, title=f"Release from thread {i}"
            )
        except Exception as error:  # shown by the assertion
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert all(isinstance(o, Release) for o in outcomes), outcomes
    assert sorted(o.number for o in outcomes) == [1, 2]
    numbers = Release._base_manager.filter(environment=tenant.staging).values_list(
        "number", flat=True
    )
    assert sorted(numbers) == [1, 2]


def _approved(tenant, author, signers, **changes) -> Release:
    branding_update(environment=tenant.staging, actor=None, **changes)
    release = release_create(environment=tenant.staging, actor=author)
    for role, signer in signers.items():
        release_sign(
            environment=tenant.staging, release=release, role=role, decision="approve", actor=signer
        )
    release.refresh_from_db()
    return release


def _staff(tenant):
    inst = tenant.institution
    author = staff_user(inst, "marketing")
    signers = {
        "it": staff_user(inst, "it"),
        "marketing": staff_user(inst, "marketing"),
        "lending": staff_user(inst, "lending"),
    }
    return author, signers, staff_user(inst, "admin", "it")


def _slow_deploy_capture(monkeypatch, seconds: float = 1.5) -> None:
    """The deploy run in the thread named "deploy" reads production, then pauses before
    writing it: what another writer does in that pause is what the lock is for."""
    real_capture = deploy_module.capture

    def slow_capture(environment):
        snapshot = real_capture(environment)
        if threading.current_thread().name == "deploy":
            time.sleep(seconds)
        return snapshot

    monkeypatch.setattr(deploy_module, "capture", slow_capture)


def _race(first, second) -> dict:
    """Run `first` (the deploy), then `second` half a second later, each in its thread."""
    outcomes: dict = {}

    def run(name, action):
        try:
            outcomes[name] = action()
        except Exception as error:  # shown by the assertions
            outcomes[name] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(name=name, target=run, args=(name, action))
        for name, action in (first, second)
    ]
    threads[0].start()
    time.sleep(0.5)  # the deploy has read production and is about to write it
    threads[1].start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_release_deploy__rollback_of_the_previous_release_at_the_same_moment__one_wins(
    monkeypatch, clock
):
    """Release A runs in production; release B (made on top of it) deploys while A's
    rollback runs at the same moment. Without a lock on production both found production
    equal to A and both wrote it, B recording A's configuration as its "previous". The
    second one must see the first's change and stop with the drift refusal."""
    require_postgres()
    tenant = make_tenant()
    policy_for(tenant.institution)
    author, signers, operator = _staff(tenant)
    clock.set(TUESDAY_23)
    first = _approved(tenant, author, signers, primary_color="#00aa00")
    release_deploy(environment=tenant.staging, release=first, actor=operator)
    first.refresh_from_db()
    second = _approved(tenant, author, signers, accent_color="#aa0000")
    _slow_deploy_capture(monkeypatch)

    outcomes = _race(
        (
            "deploy",
            lambda: release_deploy(environment=tenant.staging, release=second, actor=operator),
        ),
        (
            "rollback",
            lambda: release_rollback(
                environment=tenant.staging, release=first, actor=operator, reason="5xx"
            ),
        ),
    )

    succeeded = [
        name
        for name, outcome in outcomes.items()
        if isinstance(outcome, Release) and outcome.state == Release.State.DEPLOYED
    ]
    assert len(succeeded) == 1, f"both wrote production: {outcomes}"
    winner = outcomes[succeeded[0]]
    assert snapshot_hash(capture(tenant.production)) == winner.snapshot_hash
    loser = next(outcome for name, outcome in outcomes.items() if name != succeeded[0])
    assert isinstance(loser, ReleaseRefused), outcomes


def test_production_emergency_change__during_a_deploy__waits_and_is_not_overwritten(
    monkeypatch, clock
):
    """An emergency change saved while a deploy is between its check of production and its
    write was overwritten by the deploy (the release's snapshot holds the old value), with
    both reporting success. It must wait for the deploy and land on top of it."""
    require_postgres()
    tenant = make_tenant()
    policy_for(tenant.institution)
    author, signers, operator = _staff(tenant)
    for environment in (tenant.staging, tenant.production):
        with environment_scope(environment):
            HomeSettings.objects.create(environment=environment)
    clock.set(TUESDAY_23)
    release = _approved(tenant, author, signers, primary_color="#00aa00")
    _slow_deploy_capture(monkeypatch)

    def emergency():
        with environment_scope(tenant.production):
            settings = HomeSettings.objects.get()
        settings.fsd_threshold = "0.2500"
        return production_emergency_change(
            environment=tenant.production, obj=settings, actor=operator, reason="Bad estimates"
        )

    outcomes = _race(
        (
            "deploy",
            lambda: release_deploy(environment=tenant.staging, release=release, actor=operator),
        ),
        ("emergency", emergency),
    )

    assert isinstance(outcomes["deploy"], Release), outcomes
    assert outcomes["deploy"].state == Release.State.DEPLOYED
    assert not isinstance(outcomes["emergency"], Exception), outcomes
    assert environment_branding(tenant.production).primary_color == "#00aa00"
    with environment_scope(tenant.production):
        assert str(HomeSettings.objects.get().fsd_threshold) == "0.2500", "the change was lost"


def test_staging_refresh__running__a_staging_branding_edit_does_not_wait__another_fill_does():
    """While a staging refresh runs (minutes at volume), staging's configuration is still
    edited: the refresh's lock leaves it alone. Another fill of staging waits for it."""
    require_postgres()
    tenant = make_tenant()
    it = staff_user(tenant.institution, "it")
    for _ in range(3):
        PropertyFactory(
            environment=tenant.production, member=MemberFactory(environment=tenant.production)
        )
    paused, resume = threading.Event(), threading.Event()
    outcomes: dict = {}

    def progress(step, done, total):
        if step == "properties" and not paused.is_set():
            paused.set()  # members cleared and copied; the homes are next
            resume.wait(timeout=60)

    def refresh():
        try:
            outcomes["refresh"] = staging_refresh_from_production(
                environment=tenant.staging, actor=it, progress=progress
            )
        except Exception as error:  # shown by the assertions
            outcomes["refresh"] = error
        finally:
            paused.set()
            connection.close()

    def edit():
        try:
            outcomes["edit"] = branding_update(
                environment=tenant.staging, actor=None, primary_color="#123456"
            )
        except Exception as error:  # shown by the assertions
            outcomes["edit"] = error
        finally:
            connection.close()

    def another_fill():
        try:
            with transaction.atomic():
                staging_lock(tenant.staging)
                outcomes["another fill"] = time.monotonic()
        finally:
            connection.close()

    refreshing = threading.Thread(target=refresh)
    refreshing.start()
    assert paused.wait(timeout=60)
    editing, filling = threading.Thread(target=edit), threading.Thread(target=another_fill)
    editing.start()
    filling.start()
    editing.join(timeout=5)
    finished_during_refresh = not editing.is_alive()
    filling.join(timeout=2)
    filled_during_refresh = not filling.is_alive()
    resumed = time.monotonic()
    resume.set()
    for thread in (refreshing, editing, filling):
        thread.join(timeout=120)

    assert not isinstance(outcomes.get("refresh"), Exception), outcomes
    assert not isinstance(outcomes.get("edit"), Exception), outcomes
    with environment_scope(tenant.staging):
        assert environment_branding(tenant.staging).primary_color == "#123456"
    assert finished_during_refresh, "the branding edit waited for the whole refresh"
    assert not filled_during_refresh, "two fills of staging ran at once"
    assert outcomes["another fill"] >= resumed
