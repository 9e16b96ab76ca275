"""The scheduled deploy on real services: Redis, a real Celery worker process, the database.

A release scheduled inside a deploy window becomes due; the dispatcher task, sent as beat
sends it, runs on the worker and deploys it, and production changes. A release scheduled
for later in the window is left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from types import SimpleNamespace

import pytest
import redis
from django.utils import timezone

from chimney.celery import app
from institutions.models import Branding
from institutions.tenancy import environment_scope
from releases.models import DeployWindow, Release
from releases.services import policy_for, release_schedule
from tests.celery_worker import Worker, wait_until
from tests.factories import staff_user
from tests.releases.test_release_flow import approved
from tests.services import require_redis

DISPATCHED = re.compile(r"Task releases\.deploy_due\[[^\]]+\] succeeded in [\d.]+s: (\d+)")


def window_around_now(institution) -> None:
    """The institution's only deploy window: from an hour ago to two hours ahead, local time."""
    policy = policy_for(institution)
    policy.windows.all().delete()
    now = timezone.now().astimezone(institution.tz)
    opens, closes = now - dt.timedelta(hours=1), now + dt.timedelta(hours=2)
    DeployWindow.objects.create(
        policy=policy,
        weekdays=[opens.weekday()],
        start=opens.time().replace(second=0, microsecond=0),
        end=closes.time().replace(second=0, microsecond=0),
    )


def signers(tenant) -> SimpleNamespace:
    inst = tenant.institution
    return SimpleNamespace(
        **{
            role: staff_user(inst, role.rstrip("2"))
            for role in ("marketing", "it", "lending", "marketing2")
        }
    )


def production_colour(tenant) -> str:
    with environment_scope(tenant.production):
        return Branding.objects.get().primary_color


def dispatches(worker) -> list[int]:
    return [int(n) for n in DISPATCHED.findall(worker.output())]


@pytest.mark.redis
@pytest.mark.slow
def test_deploy_due__beat_tick_on_a_real_worker__deploys_the_due_release_only(
    transactional_db, tenant, other_tenant, tmp_path
):
    url = require_redis()
    redis.Redis.from_url(url).flushdb()  # this run's own database on the shared server
    # The dispatcher queues each deploy on the default queue, which this worker consumes.
    worker = Worker(url, extra_env={"EMAIL_URL": f"filemail:///{tmp_path}"}).start()
    try:
        assert worker.send_task("chimney.ping", args=["up"]).get(timeout=90) == "up"
        due_tenant, later_tenant = tenant, other_tenant
        for t in (due_tenant, later_tenant):
            window_around_now(t.institution)
        due = approved(due_tenant, signers(due_tenant), primary_color="#0b6e4f")
        later = approved(later_tenant, signers(later_tenant), primary_color="#aa3300")
        colour_before = production_colour(later_tenant)
        it = staff_user(due_tenant.institution, "it")
        release_schedule(
            environment=due_tenant.staging,
            release=due,
            at=timezone.now() + dt.timedelta(seconds=2),
            actor=it,
        )
        release_schedule(
            environment=later_tenant.staging,
            release=later,
            at=timezone.now() + dt.timedelta(hours=1),
            actor=staff_user(later_tenant.institution, "it"),
        )
        time.sleep(2.5)  # the first release's moment has come
        entry = app.conf.beat_schedule["releases-deploy-due"]
        worker.send_task(entry["task"], kwargs=entry.get("kwargs"))

        def deployed():
            due.refresh_from_db()
            return due.state == Release.State.DEPLOYED

        wait_until(deployed, timeout=90)
        assert production_colour(due_tenant) == "#0b6e4f"
        assert due.deployed_at >= due.scheduled_for
        assert due.watch_state == Release.Watch.WATCHING

        worker.send_task(entry["task"])  # the next tick: nothing more is due
        wait_until(lambda: len(dispatches(worker)) == 2, timeout=60)
        assert dispatches(worker) == [1, 0], worker.output()
        later.refresh_from_db()
        assert later.state == Release.State.SCHEDULED
        assert production_colour(later_tenant) == colour_before
    finally:
        worker.stop()
