"""Releases from staging: creation, supersession, sign-off, schedule, deploy, rollback."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from institutions.models import AuditEntry
from institutions.selectors import environment_branding
from institutions.services import branding_update
from institutions.services.institutions import staff_role_revoke
from releases import apply as apply_module
from releases.models import Release, SignOff
from releases.selectors import signoffs_of
from releases.services import (
    ReleaseRefused,
    missing_roles,
    release_create,
    release_deploy,
    release_rollback,
    release_schedule,
    release_sign,
)
from releases.snapshot import capture, snapshot_hash
from tests.homes.factories import home_settings_factory

NY = ZoneInfo("America/New_York")
TUESDAY_23 = dt.datetime(2025, 3, 4, 23, 0, tzinfo=NY)


def change_staging(tenant, **changes):
    branding_update(environment=tenant.staging, actor=None, **changes)


def approved(tenant, people, **changes) -> Release:
    change_staging(tenant, **(changes or {"primary_color": "#00aa00"}))
    release = release_create(environment=tenant.staging, actor=people.marketing)
    for role in ("it", "lending"):
        release_sign(
            environment=tenant.staging,
            release=release,
            role=role,
            decision="approve",
            actor=getattr(people, role),
        )
    release_sign(
        environment=tenant.staging,
        release=release,
        role="marketing",
        decision="approve",
        actor=people.marketing2,
    )
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    return release


@pytest.mark.django_db
def test_release_create__no_changes__is_refused(tenant, people):
    with pytest.raises(ReleaseRefused, match="Nothing to release"):
        release_create(environment=tenant.staging, actor=people.marketing)
    assert not Release._base_manager.exists()


@pytest.mark.django_db
def test_release_create__from_production__is_refused(tenant, people):
    with pytest.raises(ReleaseRefused, match="made from staging"):
        release_create(environment=tenant.production, actor=people.marketing)


@pytest.mark.django_db
def test_release_create__diff_shows_exactly_the_changes(tenant, people):
    change_staging(tenant, primary_color="#00aa00", footer_text="Federally insured by NCUA")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    (entry,) = release.diff
    assert entry["change"] == "changed"
    assert {f["field"] for f in entry["fields"]} == {"primary_color", "footer_text"}
    assert release.required_roles == ["it", "marketing", "lending"]
    assert release.state == Release.State.PENDING


@pytest.mark.django_db
def test_staging_change_after_snapshot__makes_a_new_release_and_sign_offs_do_not_carry(
    tenant, people
):
    change_staging(tenant, primary_color="#00aa00")
    first = release_create(environment=tenant.staging, actor=people.marketing)
    release_sign(
        environment=tenant.staging, release=first, role="it", decision="approve", actor=people.it
    )
    change_staging(tenant, accent_color="#aa0000")
    with pytest.raises(ReleaseRefused, match="superseded by release #2"):
        release_sign(
            environment=tenant.staging,
            release=first,
            role="lending",
            decision="approve",
            actor=people.lending,
        )
    first.refresh_from_db()
    assert first.state == Release.State.SUPERSEDED
    second = first.superseded_by
    assert second.author == people.marketing
    assert signoffs_of(second).count() == 0
    assert {f["field"] for f in second.diff[0]["fields"]} == {"primary_color", "accent_color"}


@pytest.mark.django_db
def test_release_create__staging_values_with_the_mock_only__refused_naming_provider_order(
    tenant, people
):
    """Staging may value its mock homes with the mock alone; production skips the mock, so
    that order, promoted, left production valuing no home (its refreshes "done", none
    valued). The release is refused naming provider_order; with production's providers
    after the mock it is made (staging still values with the mock)."""
    home_settings_factory(tenant.production)  # the default order: comparable, vendor
    home_settings_factory(tenant.staging, provider_order=["mock"])
    with pytest.raises(ReleaseRefused) as refused:
        release_create(environment=tenant.staging, actor=people.marketing)
    assert 'provider_order ["mock"] has no valuation provider production uses' in str(refused.value)
    assert not Release._base_manager.exists()
    home_settings_factory(tenant.staging, provider_order=["mock", "comparable", "vendor"])
    release = release_create(environment=tenant.staging, actor=people.marketing)
    assert release.state == Release.State.PENDING


@pytest.mark.django_db
def test_staging_change_after_snapshot__to_a_mock_only_order__superseded_saying_why(tenant, people):
    """An open release whose staging then lists only the mock cannot be replaced by a new
    one: it is superseded with the reason, not with "nothing left to release"."""
    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    home_settings_factory(tenant.staging, provider_order=["mock"])
    with pytest.raises(ReleaseRefused, match="cannot be released: Home settings: the provider"):
        release_sign(
            environment=tenant.staging,
            release=release,
            role="it",
            decision="approve",
            actor=people.it,
        )
    release.refresh_from_db()
    assert release.state == Release.State.SUPERSEDED
    assert "nothing left to release" not in release.state_reason


@pytest.mark.django_db
def test_release_deploy__snapshot_with_a_mock_only_order__refused_naming_provider_order(
    tenant, people, clock
):
    """A release made before releases checked the provider order is not deployed either."""
    for environment in (tenant.staging, tenant.production):
        home_settings_factory(environment)  # the same default order
    release = approved(tenant, people)
    (row,) = release.snapshot["models"]["homes.HomeSettings"].values()
    row["provider_order"] = ["mock"]
    Release._base_manager.filter(pk=release.pk).update(snapshot=release.snapshot)
    clock.set(TUESDAY_23)
    with pytest.raises(ReleaseRefused, match="provider_order"):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert environment_branding(tenant.production).primary_color == "#1f4e79"


@pytest.mark.django_db
def test_release_sign__rules__each_refused_with_its_reason(tenant, people):
    from tests.factories import staff_user

    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    env = tenant.staging

    def sign(role, actor, decision="approve", comment=""):
        return release_sign(
            environment=env,
            release=release,
            role=role,
            decision=decision,
            comment=comment,
            actor=actor,
        )

    with pytest.raises(ReleaseRefused, match="do not hold the lending role"):
        sign("lending", people.it)
    with pytest.raises(ReleaseRefused, match="someone else must approve"):
        sign("marketing", people.marketing)
    with pytest.raises(ReleaseRefused, match="admin is not one of them"):
        sign("admin", people.admin)
    sign("it", people.it)
    with pytest.raises(ReleaseRefused, match="IT has already signed"):
        sign("it", staff_user(tenant.institution, "it"))
    with pytest.raises(ReleaseRefused, match="comment is required"):
        sign("lending", people.lending, decision="reject")
    assert signoffs_of(release).count() == 1
    assert AuditEntry.objects.filter(object_type="releases.Release").count() >= 2


@pytest.mark.django_db
def test_release_sign__one_person_signs_one_role_only(tenant, people):
    from tests.factories import staff_user

    both = staff_user(tenant.institution, "it", "lending")
    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    release_sign(
        environment=tenant.staging, release=release, role="it", decision="approve", actor=both
    )
    with pytest.raises(ReleaseRefused, match="one person signs for one role only"):
        release_sign(
            environment=tenant.staging,
            release=release,
            role="lending",
            decision="approve",
            actor=both,
        )


@pytest.mark.django_db
def test_release_sign__rejection__stops_the_release(tenant, people, clock):
    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    release_sign(
        environment=tenant.staging,
        release=release,
        role="lending",
        decision="reject",
        comment="The APR disclosure is missing.",
        actor=people.lending,
    )
    release.refresh_from_db()
    assert release.state == Release.State.REJECTED
    with pytest.raises(ReleaseRefused, match=r"rejected: .*APR disclosure"):
        release_deploy(
            environment=tenant.staging, release=release, actor=people.admin, reason="urgent"
        )
    with pytest.raises(ReleaseRefused, match="rejected"):
        release_schedule(
            environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it
        )


@pytest.mark.django_db
def test_release_schedule__monday_afternoon__refused_naming_the_next_window(tenant, people, clock):
    release = approved(tenant, people)
    monday_later = dt.datetime(2025, 3, 3, 15, 0, tzinfo=NY)
    with pytest.raises(ReleaseRefused) as refused:
        release_schedule(
            environment=tenant.staging, release=release, at=monday_later, actor=people.it
        )
    assert "Monday 03 March 2025 15:00" in refused.value.message
    assert "next window opens Tuesday 04 March 2025 22:00" in refused.value.message
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    release.refresh_from_db()
    assert release.state == Release.State.SCHEDULED
    assert release.scheduled_for == TUESDAY_23


@pytest.mark.django_db
def test_release_schedule__outside_window__admin_with_reason_is_recorded(tenant, people, clock):
    release = approved(tenant, people)
    at = dt.datetime(2025, 3, 3, 16, 0, tzinfo=NY)
    with pytest.raises(ReleaseRefused, match="admin role and a reason"):
        release_schedule(environment=tenant.staging, release=release, at=at, actor=people.admin)
    release_schedule(
        environment=tenant.staging,
        release=release,
        at=at,
        actor=people.admin,
        reason="Rate change effective today by regulation",
    )
    release.refresh_from_db()
    assert release.window_override_reason == "Rate change effective today by regulation"


@pytest.mark.django_db
def test_release_deploy__scheduled__production_becomes_snapshot_and_cache_is_fresh(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    assert environment_branding(tenant.production).primary_color == "#1f4e79"  # cached now
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 + dt.timedelta(seconds=30))
    before = capture(tenant.production)
    from releases.tasks import deploy_due

    with django_capture_on_commit_callbacks(execute=True):
        assert deploy_due() == 1  # eager in tests: dispatches and deploys
        # Before commit the cached branding is still the old one: invalidation waits.
        assert environment_branding(tenant.production).primary_color == "#1f4e79"
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED
    assert release.previous_snapshot == before
    assert snapshot_hash(capture(tenant.production)) == release.snapshot_hash
    assert environment_branding(tenant.production).primary_color == "#00aa00"
    assert release.watch_state == Release.Watch.WATCHING
    assert AuditEntry.objects.filter(
        environment=tenant.production, reason=f"Release #{release.number}"
    ).exists()
    assert deploy_due() == 0


@pytest.mark.django_db
def test_release_deploy__fault_mid_deploy__production_unchanged(
    tenant, people, clock, promotables, monkeypatch
):
    promotables.Gadget.objects.create(environment=tenant.staging, name="Widget")
    promotables.Gadget.objects.create(environment=tenant.staging, name="Gizmo")
    release = approved(tenant, people, primary_color="#00aa00")
    before = capture(tenant.production)
    calls = []

    def failing_save(obj):
        calls.append(obj)
        if len(calls) == 2:
            raise OSError("disk went away")
        obj.save()

    monkeypatch.setattr(apply_module, "save_row", failing_save)
    clock.set(TUESDAY_23)
    with pytest.raises(OSError, match="disk went away"):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert len(calls) == 2
    assert capture(tenant.production) == before
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    assert "production unchanged" in release.last_error


@pytest.mark.django_db
def test_release_deploy__production_changed_since_snapshot__stops_with_the_conflict(
    tenant, people, clock
):
    release = approved(tenant, people)
    branding_update(environment=tenant.production, actor=people.admin, footer_text="Emergency")
    before = capture(tenant.production)
    clock.set(TUESDAY_23)
    with pytest.raises(ReleaseRefused, match="Production changed after the snapshot"):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    release.refresh_from_db()
    assert release.state == Release.State.CONFLICT
    assert release.conflict[0]["fields"][0]["field"] == "footer_text"
    assert capture(tenant.production) == before


@pytest.mark.django_db
def test_release_deploy__now_outside_window__needs_admin_and_reason(tenant, people, clock):
    release = approved(tenant, people)
    with pytest.raises(ReleaseRefused, match="outside the deploy windows"):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    with pytest.raises(ReleaseRefused, match="IT or admin"):
        release_deploy(environment=tenant.staging, release=release, actor=people.lending)
    release_deploy(
        environment=tenant.staging,
        release=release,
        actor=people.admin,
        reason="Fixing a wrong rate shown to members",
    )
    release.refresh_from_db()
    assert release.deploy_reason == "Fixing a wrong rate shown to members"


@pytest.mark.django_db
def test_release_deploy__superseded__is_refused(tenant, people, clock):
    release = approved(tenant, people)
    change_staging(tenant, accent_color="#aa0000")
    clock.set(TUESDAY_23)
    with pytest.raises(ReleaseRefused, match="superseded"):
        release_deploy(environment=tenant.staging, release=release, actor=people.it)
    assert environment_branding(tenant.production).primary_color == "#1f4e79"


@pytest.mark.django_db
def test_release_rollback__one_action__restores_previous_config_as_a_release(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    release = approved(tenant, people)
    before = capture(tenant.production)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    with pytest.raises(ReleaseRefused, match="reason is required"):
        release_rollback(environment=tenant.staging, release=release, actor=people.it, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        rollback = release_rollback(
            environment=tenant.staging, release=release, actor=people.it, reason="Colour unreadable"
        )
    assert rollback.kind == Release.Kind.ROLLBACK
    assert rollback.state == Release.State.DEPLOYED
    assert rollback.rolls_back == release
    assert snapshot_hash(capture(tenant.production)) == snapshot_hash(before)
    assert environment_branding(tenant.production).primary_color == "#1f4e79"
    release.refresh_from_db()
    assert release.state == Release.State.ROLLED_BACK
    assert rollback.diff[0]["fields"][0]["after"] == "#1f4e79"


@pytest.mark.django_db
def test_signoffs__recorded_with_times_and_comments(tenant, people, clock):
    release = approved(tenant, people)
    rows = list(signoffs_of(release).order_by("role"))
    assert [(s.role, s.decision) for s in rows] == [
        ("it", SignOff.Decision.APPROVE),
        ("lending", SignOff.Decision.APPROVE),
        ("marketing", SignOff.Decision.APPROVE),
    ]
    assert all(s.at == clock.moment for s in rows)


def deployed_pair(tenant, people, clock) -> tuple[Release, Release]:
    """Release 1 (a colour) deployed, then release 2 (an accent) deployed on top of it."""
    first = approved(tenant, people)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=first, actor=people.it)
    second = approved(tenant, people, accent_color="#aa0000")
    clock.set(TUESDAY_23 + dt.timedelta(minutes=2))
    release_deploy(environment=tenant.staging, release=second, actor=people.it)
    first.refresh_from_db()
    second.refresh_from_db()
    return first, second


@pytest.mark.django_db
def test_release_rollback__later_release_still_deployed__refused_naming_it(tenant, people, clock):
    first, second = deployed_pair(tenant, people, clock)
    with pytest.raises(ReleaseRefused, match=f"Release #{second.number} was deployed after"):
        release_rollback(environment=tenant.staging, release=first, actor=people.it, reason="x")
    assert environment_branding(tenant.production).accent_color == "#aa0000"


@pytest.mark.django_db
def test_release_rollback__earlier_release_after_the_later_was_rolled_back__is_allowed(
    tenant, people, clock
):
    first, second = deployed_pair(tenant, people, clock)
    clock.set(TUESDAY_23 + dt.timedelta(minutes=4))
    release_rollback(environment=tenant.staging, release=second, actor=people.it, reason="Accent")
    clock.set(TUESDAY_23 + dt.timedelta(minutes=6))
    first.refresh_from_db()
    rollback = release_rollback(
        environment=tenant.staging, release=first, actor=people.it, reason="Colour too"
    )
    assert rollback.state == Release.State.DEPLOYED
    assert snapshot_hash(capture(tenant.production)) == snapshot_hash(first.previous_snapshot)
    assert environment_branding(tenant.production).primary_color == "#1f4e79"


@pytest.mark.django_db
def test_release_rollback__production_changed_after_deploy__stops_with_the_conflict(
    tenant, people, clock
):
    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    # An audited emergency fix made after the deploy.
    branding_update(environment=tenant.production, actor=people.admin, footer_text="Emergency")
    before = capture(tenant.production)
    release.refresh_from_db()
    with pytest.raises(ReleaseRefused, match="production changed after it was deployed"):
        release_rollback(environment=tenant.staging, release=release, actor=people.it, reason="x")
    assert capture(tenant.production) == before
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED
    assert [f["field"] for f in release.conflict[0]["fields"]] == ["footer_text"]
    assert "production changed after it was deployed" in release.last_error
    assert Release._base_manager.filter(kind=Release.Kind.ROLLBACK).count() == 0


@pytest.mark.django_db
def test_release_schedule__without_it_or_admin_role__is_refused(tenant, people, clock):
    release = approved(tenant, people)
    for person in (people.marketing, people.lending):
        with pytest.raises(ReleaseRefused, match="needs the IT or admin role"):
            release_schedule(
                environment=tenant.staging, release=release, at=TUESDAY_23, actor=person
            )
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.APPROVED, None)


def _approve(tenant, release, role, actor):
    return release_sign(
        environment=tenant.staging, release=release, role=role, decision="approve", actor=actor
    )


@pytest.mark.django_db
def test_release_sign__signer_lost_the_role_before_the_last_approval__release_not_approved(
    tenant, people, clock
):
    """An approval counts only while its signer still holds the role they signed for: IT
    approves, then loses the IT role; marketing and lending approving does not make the
    release approved, and it does not deploy."""
    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    _approve(tenant, release, "it", people.it)
    staff_role_revoke(institution=tenant.institution, user=people.it, role="it", actor=people.admin)
    people.it.__dict__.pop("_chimney_roles", None)
    _approve(tenant, release, "lending", people.lending)
    _approve(tenant, release, "marketing", people.marketing2)
    release.refresh_from_db()
    assert release.state == Release.State.PENDING, (
        "the IT approval of a person who no longer holds the IT role still counted"
    )
    assert missing_roles(release) == ["it"]
    clock.set(TUESDAY_23)
    with pytest.raises(ReleaseRefused, match="still needs sign-off from IT"):
        release_deploy(environment=tenant.staging, release=release, actor=people.admin)


@pytest.mark.django_db
def test_release_sign__lapsed_approval__another_holder_of_the_role_takes_its_place(
    tenant, people, clock
):
    from tests.factories import staff_user

    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    _approve(tenant, release, "it", people.it)
    staff_role_revoke(institution=tenant.institution, user=people.it, role="it", actor=people.admin)
    _approve(tenant, release, "lending", people.lending)
    _approve(tenant, release, "marketing", people.marketing2)
    it2 = staff_user(tenant.institution, "it")
    _approve(tenant, release, "it", it2)
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    assert {s.role: s.signer for s in signoffs_of(release)}["it"] == it2
    assert AuditEntry.objects.filter(
        object_type="releases.Release",
        object_id=str(release.pk),
        object_repr__contains="approval for IT withdrawn",
        reason__contains="no longer hold the IT role",
    ).exists()


@pytest.mark.django_db
def test_release_schedule__an_approver_lost_the_role_after_approval__back_to_sign_off(
    tenant, people, clock
):
    release = approved(tenant, people)
    staff_role_revoke(
        institution=tenant.institution, user=people.lending, role="lending", actor=people.admin
    )
    with pytest.raises(ReleaseRefused, match="still needs sign-off from lending"):
        release_schedule(
            environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it
        )
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.PENDING, None)
    assert "no longer hold the lending role" in release.state_reason


@pytest.mark.django_db
def test_release_deploy__scheduled_and_an_approver_lost_the_role__not_deployed(
    tenant, people, clock, django_capture_on_commit_callbacks, mailoutbox
):
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    staff_role_revoke(institution=tenant.institution, user=people.it, role="it", actor=people.admin)
    clock.set(TUESDAY_23 + dt.timedelta(seconds=30))
    before = capture(tenant.production)
    from releases.tasks import deploy_due

    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    assert capture(tenant.production) == before
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.PENDING, None)
    assert "IT approval by" in release.state_reason
    (mail,) = [m for m in mailoutbox if "needs sign-off again" in m.subject]
    assert people.it.email in mail.to  # the scheduler hears why it did not deploy
    assert deploy_due() == 0


@pytest.mark.django_db
def test_release_sign__staging_changed_by_a_signer__that_signer_cannot_approve_it(
    tenant, people, clock
):
    """No self-approval means the person whose change is in the release cannot approve it,
    even when the release that carries it was authored by someone else (a superseding
    release keeps the old one's author)."""
    change_staging(tenant, primary_color="#00aa00")
    first = release_create(environment=tenant.staging, actor=people.marketing)
    branding_update(environment=tenant.staging, actor=people.marketing2, accent_color="#aa0000")
    with pytest.raises(ReleaseRefused, match="superseded"):
        _approve(tenant, first, "it", people.it)
    first.refresh_from_db()
    second = first.superseded_by
    assert second.author == people.marketing
    assert any(f["field"] == "accent_color" for f in second.diff[0]["fields"])
    with pytest.raises(ReleaseRefused, match="You changed branding in staging"):
        _approve(tenant, second, "marketing", people.marketing2)
    # Rejecting one's own change stays possible.
    release_sign(
        environment=tenant.staging,
        release=second,
        role="marketing",
        decision="reject",
        comment="wrong accent",
        actor=people.marketing2,
    )


@pytest.mark.django_db
def test_release_sign__maker_of_an_already_deployed_change__may_approve_the_next_release(
    tenant, people, clock
):
    """Only changes since production last matched staging count: a change that went out in
    an earlier release does not bar its maker from approving the next one."""
    from tests.factories import staff_user

    branding_update(environment=tenant.staging, actor=people.marketing2, primary_color="#00aa00")
    first = release_create(environment=tenant.staging, actor=people.marketing)
    _approve(tenant, first, "it", people.it)
    _approve(tenant, first, "lending", people.lending)
    _approve(tenant, first, "marketing", staff_user(tenant.institution, "marketing"))
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=first, actor=people.it)
    change_staging(tenant, accent_color="#aa0000")
    second = release_create(environment=tenant.staging, actor=people.marketing)
    _approve(tenant, second, "marketing", people.marketing2)
    assert signoffs_of(second).get(role="marketing").signer == people.marketing2


@pytest.mark.django_db
def test_release_sign__platform_superuser_without_a_role_here__cannot_sign(tenant, people, clock):
    """Sign-offs are the institution's own approvals: a platform superuser holding no role
    at the institution cannot sign for its IT role."""
    from tests.factories import UserFactory

    operator = UserFactory(is_superuser=True, is_staff=True)
    change_staging(tenant, primary_color="#00aa00")
    release = release_create(environment=tenant.staging, actor=people.marketing)
    with pytest.raises(ReleaseRefused, match="platform operator signs only with a role granted"):
        _approve(tenant, release, "it", operator)
    assert signoffs_of(release).count() == 0


@pytest.mark.django_db
def test_release_rollback__of_a_rollback__is_refused_pointing_to_a_new_release(
    tenant, people, clock
):
    """Rolling back a rollback would put back, with no sign-off and no watch (only
    promotions are watched), a configuration the oracle may just have failed: refused,
    naming the way back (a release from staging), and production keeps the rollback."""
    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    release.refresh_from_db()
    clock.set(TUESDAY_23 + dt.timedelta(minutes=5))
    rollback = release_rollback(
        environment=tenant.staging, release=release, actor=people.it, reason="5xx on offers"
    )
    clock.set(TUESDAY_23 + dt.timedelta(minutes=10))
    with pytest.raises(ReleaseRefused, match="make a new release from staging"):
        release_rollback(
            environment=tenant.staging, release=rollback, actor=people.it, reason="Undo"
        )
    assert environment_branding(tenant.production).primary_color == "#1f4e79"
    rollback.refresh_from_db()
    assert rollback.state == Release.State.DEPLOYED
    assert Release._base_manager.filter(environment=tenant.staging).count() == 2
