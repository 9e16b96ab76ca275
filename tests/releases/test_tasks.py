"""Deploys and watches are driven by beat from database state, so a worker restart loses nothing."""

import datetime as dt

import pytest

from chimney.celery import app
from releases.models import Release
from releases.tasks import deploy_due
from tests.releases.test_release_flow import NY, TUESDAY_23, approved


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
