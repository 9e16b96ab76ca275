"""Deploys and watches are driven by beat from database state, so a worker restart loses nothing."""

import datetime as dt

import pytest
from django.core import mail

from chimney.celery import app
from institutions.models import AuditEntry
from institutions.selectors import environment_branding
from institutions.services import branding_update
from releases.models import Release
from releases.services import ReleaseRefused, release_cancel, release_deploy, release_schedule
from releases.services import deploy as deploy_module
from releases.tasks import deploy_due
from tests.releases.test_release_flow import NY, TUESDAY_23, approved, change_staging


def test_beat_schedule__has_the_release_dispatchers():
    schedule = app.conf.beat_schedule
    assert schedule["releases-deploy-due"]["task"] == "releases.deploy_due"
    assert schedule["releases-watch-due"]["task"] == "releases.watch_due"
    assert "releases.deploy_due" in app.tasks
    assert "releases.deploy" in app.tasks


@pytest.mark.django_db
def test_deploy_due__scheduled_release__waits_for_its_time_then_deploys_once(
    tenant, people, clock, monkeypatch
):
    from releases.services import release_schedule

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 - dt.timedelta(minutes=1))
    assert deploy_due() == 0
    # A tick while a worker was down: the release is still due at the next tick.
    clock.set(TUESDAY_23 + dt.timedelta(minutes=3))
    assert deploy_due() == 1
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED
    assert deploy_due() == 0


@pytest.mark.django_db
def test_deploy_due__window_closed_before_it_ran__returns_to_approved_with_reason(
    tenant, people, clock
):
    from releases.services import release_schedule

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 + dt.timedelta(hours=7))  # Wednesday 06:00: the window closed at 05:00
    deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    assert "window closed" in release.last_error


@pytest.mark.django_db
def test_deploy_due__planned_in_the_last_minute_tick_after_the_window__deploys(
    tenant, people, clock
):
    from releases.services import release_schedule

    release = approved(tenant, people)
    last_minute = dt.datetime(2025, 3, 5, 4, 59, 30, tzinfo=NY)  # the window closes at 05:00
    release_schedule(environment=tenant.staging, release=release, at=last_minute, actor=people.it)
    clock.set(last_minute + dt.timedelta(minutes=1))  # the tick lands at 05:00:30
    assert deploy_due() == 1
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED
    assert release.last_error == ""


@pytest.mark.django_db
def test_deploy_due__window_closed_hours_before_the_tick__the_scheduler_is_told(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    from django.core import mail

    from releases.services import release_schedule

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 + dt.timedelta(hours=7))  # a worker down all night
    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    (message,) = mail.outbox
    assert "ivan@cu.test" in message.to
    assert "was not deployed" in message.subject
    assert "window closed" in message.body


@pytest.mark.django_db
def test_deploy_due__window_closed_while_the_mail_server_is_down__the_scheduler_told_later(
    tenant, people, clock, settings, django_capture_on_commit_callbacks
):
    from celery.exceptions import Retry

    from releases.services import release_schedule
    from tests.notifications.conftest import SMTPSink, free_port, smtp_at

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 + dt.timedelta(hours=7))
    smtp_at(settings, free_port(), timeout=2)  # nothing listens there: connection refused
    # Eager tasks raise the retry they ask for; a worker would run it after its countdown.
    with pytest.raises(Retry) as retry, django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED
    sink = SMTPSink()
    sink.controller.start()
    try:
        smtp_at(settings, sink.port, timeout=2)
        retry.value.sig.apply()
    finally:
        sink.controller.stop()
    (message,) = sink.to("ivan@cu.test")
    assert "was not deployed" in message["Subject"]


def test_release_mail__every_address_refused__logged_not_retried(settings, caplog):
    from releases.tasks import release_mail
    from tests.notifications.conftest import SMTPSink, smtp_at

    sink = SMTPSink()  # answers 550 to addresses that start with "bounce"
    sink.controller.start()
    try:
        smtp_at(settings, sink.port, timeout=2)
        release_mail.delay("Release #1 was not deployed", "Why.", ["bounce@cu.test"])  # no Retry
    finally:
        sink.controller.stop()
    assert sink.messages == []
    assert "refused for every recipient" in caplog.text


@pytest.mark.django_db
def test_release_cancel__scheduled_release__is_unscheduled_audited_and_not_deployed(
    tenant, people, clock
):
    """When someone learns at 22:50 that the 23:00 deploy must not happen, one audited action
    takes it off the schedule and keeps its approvals."""
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    release_cancel(
        environment=tenant.staging,
        release=release,
        actor=people.it,
        reason="Branch network outage tonight",
    )
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.APPROVED, None)
    assert (release.scheduled_by, release.scheduled_at) == (None, None)
    assert release.signoffs(manager="_base_manager").count() == 3
    entry = AuditEntry.objects.filter(environment=tenant.staging).latest("id")
    assert "cancelled" in entry.object_repr
    assert entry.reason == "Branch network outage tonight"
    clock.set(TUESDAY_23 + dt.timedelta(minutes=1))
    assert deploy_due() == 0
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED


@pytest.mark.django_db
def test_release_cancel__rules__each_refused_with_its_reason(tenant, people, clock):
    release = approved(tenant, people)
    cases = (
        (people.it, "Outage", "only a scheduled deploy"),
        (people.marketing, "Outage", "needs the IT or admin role"),
    )
    for actor, reason, message in cases:
        with pytest.raises(ReleaseRefused, match=message):
            release_cancel(environment=tenant.staging, release=release, actor=actor, reason=reason)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    with pytest.raises(ReleaseRefused, match="reason is required"):
        release_cancel(environment=tenant.staging, release=release, actor=people.it, reason=" ")
    with pytest.raises(ReleaseRefused, match="another environment"):
        release_cancel(environment=tenant.production, release=release, actor=people.it, reason="x")
    release.refresh_from_db()
    assert release.state == Release.State.SCHEDULED


@pytest.mark.django_db
def test_deploy_release__cancelled_after_the_dispatcher_found_it_due__does_not_deploy(
    tenant, people, clock, monkeypatch
):
    """The deploy task reads the release, then a person cancels it before the deploy's
    transaction locks it: the locked re-read must see the cancel, not deploy an approved
    release at a time nobody now plans."""
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    clock.set(TUESDAY_23 + dt.timedelta(seconds=30))
    real_production_of = deploy_module.production_of

    def cancelled_meanwhile(environment):
        release_cancel(
            environment=tenant.staging, release=release, actor=people.admin, reason="Outage"
        )
        return real_production_of(environment)

    monkeypatch.setattr(deploy_module, "production_of", cancelled_meanwhile)
    due = Release._base_manager.get(pk=release.pk)
    with pytest.raises(ReleaseRefused, match="no longer scheduled"):
        release_deploy(environment=tenant.staging, release=due, actor=None, scheduled=True)
    release.refresh_from_db()
    assert (release.state, release.deployed_at) == (Release.State.APPROVED, None)
    assert environment_branding(tenant.production).primary_color == "#1f4e79"


MONDAY_16 = dt.datetime(2025, 3, 3, 16, 0, tzinfo=NY)  # outside every default window


def _scheduled_with_an_override_at(tenant, people, at):
    """An approved release an admin scheduled outside the windows, with a reason."""
    release = approved(tenant, people)
    release_schedule(
        environment=tenant.staging,
        release=release,
        at=at,
        actor=people.admin,
        reason="Rate change effective today by regulation",
    )
    return release


@pytest.mark.django_db
def test_deploy_due__admin_override_days_late__unscheduled_and_the_scheduler_is_told(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    """An admin's window override covers the time they chose, not any time after it: with
    the worker down from Monday 16:00 to Thursday 16:00, the deploy does not run three days
    late at peak time (LATE_GRACE applies to overrides too)."""
    release = _scheduled_with_an_override_at(tenant, people, MONDAY_16)
    clock.set(MONDAY_16 + dt.timedelta(days=3))  # Thursday 16:00
    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.APPROVED, None)
    assert "window override" in release.last_error
    assert any("ada@cu.test" in m.to for m in mail.outbox)


@pytest.mark.django_db
def test_deploy_due__admin_override_tick_within_the_grace__deploys(tenant, people, clock):
    release = _scheduled_with_an_override_at(tenant, people, MONDAY_16)
    clock.set(MONDAY_16 + dt.timedelta(minutes=1))
    deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED


@pytest.mark.django_db
def test_deploy_due__production_changed_before_the_scheduled_deploy__the_scheduler_is_told(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    """A scheduled deploy that stops because production changed reaches a person, as the
    window-closed case does, rather than only recording the state."""
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    branding_update(environment=tenant.production, actor=people.admin, footer_text="Emergency")
    clock.set(TUESDAY_23 + dt.timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.CONFLICT
    told = [m for m in mail.outbox if "ivan@cu.test" in m.to]
    assert told, "nobody was told"
    assert "Production changed after the snapshot" in told[0].body


@pytest.mark.django_db
def test_deploy_due__staging_changed_before_the_scheduled_deploy__the_scheduler_is_told(
    tenant, people, clock, django_capture_on_commit_callbacks
):
    """Same for a scheduled release superseded at deploy time because staging moved on."""
    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    change_staging(tenant, accent_color="#aa0000")
    clock.set(TUESDAY_23 + dt.timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.SUPERSEDED
    told = [m for m in mail.outbox if "ivan@cu.test" in m.to]
    assert told, "nobody was told"
    assert "superseded" in told[0].body
    assert "mara@cu.test" in told[0].to  # the author too


@pytest.mark.django_db
def test_deploy_due__unexpected_error__the_scheduler_is_told_once_and_it_is_tried_again(
    tenant, people, clock, monkeypatch, django_capture_on_commit_callbacks
):
    """A scheduled deploy that fails with an unexpected error (production unchanged) is
    tried again at the next tick; its scheduler hears of it once, not at every tick."""
    from releases import apply as apply_module

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)

    def failing_save(obj):
        raise OSError("disk went away")

    saving = apply_module.save_row
    monkeypatch.setattr(apply_module, "save_row", failing_save)
    for minute in (0, 1):
        clock.set(TUESDAY_23 + dt.timedelta(minutes=minute, seconds=30))
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(OSError, match="disk"):
            release_deploy(environment=tenant.staging, release=release, actor=None, scheduled=True)
        release.refresh_from_db()
        assert release.state == Release.State.SCHEDULED
        assert "disk went away" in release.last_error
    told = [m for m in mail.outbox if "ivan@cu.test" in m.to]
    assert len(told) == 1
    assert "disk went away" in told[0].body
    monkeypatch.setattr(apply_module, "save_row", saving)  # the disk is back
    clock.set(TUESDAY_23 + dt.timedelta(minutes=2))
    deploy_due()
    release.refresh_from_db()
    assert release.state == Release.State.DEPLOYED
    assert release.last_error == ""
