"""A refresh asked for while the task queue is down: the run is stored, audited and left
pending to resume, and staff (or the command's user) are told, instead of a server error.
A large vendor upload's run left so is closed by homes.equity_tick once it revalued the
homes.

Celery publishes to a port nobody listens on, as when the broker is down. A run is queued
once it commits: the admin and command tests commit for real (transactional_db), as
requests and commands outside any transaction do.
"""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.messages import INFO, WARNING
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from chimney.celery import app as celery_app
from homes.models import Property, RefreshRun, Valuation
from homes.services import refresh_waiting_start, vendor
from homes.services.refresh import refresh_resume
from homes.services.sync import REFRESH_GRACE
from homes.tasks import equity_tick
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.homes.caldav_server import free_port
from tests.homes.factories import PropertyFactory, home_settings_factory


@pytest.fixture(autouse=True)
def _project_celery_app():
    """Shared tasks go through the current Celery app, and a test's client app (see
    tests.celery_worker.producer) makes itself current: here the project's app is, as in
    the processes that serve requests."""
    celery_app.set_current()


@contextmanager
def broker_down():
    """Tasks are published (not run eagerly) to a Redis port where nothing listens: the
    connection is refused. The app's connection pools are dropped on the way in and out,
    so that each side connects to its own broker."""
    conf = celery_app.conf
    names = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {name: conf[name] for name in names}

    def reset_pools():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    conf.update(
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
        broker_transport_options={},
        task_always_eager=False,
    )
    reset_pools()
    try:
        yield
    finally:
        conf.update(saved)
        reset_pools()


def _homes(tenant, n=2):
    home_settings_factory(tenant.staging, provider_order=["mock"])
    return [PropertyFactory(environment=tenant.staging) for _ in range(n)]


def _messages(response):
    return [(m.level, str(m)) for m in response.context["messages"]]


def test_refresh_admin__start_with_the_broker_down__run_kept_and_staff_told_to_resume(
    transactional_db, tenant
):
    _homes(tenant)
    user = staff_user(tenant.institution, "it")
    client = staff_client(user, tenant.staging)
    with broker_down():
        response = client.post(reverse("admin:homes_refreshrun_start"), follow=True)
    assert response.status_code == 200
    with environment_scope(tenant.staging):
        run = RefreshRun.objects.get()
    assert (run.status, run.total) == ("pending", 2)
    [(level, text)] = _messages(response)
    assert level == WARNING
    assert f"Refresh {run.pk} of 2 properties is recorded but could not be queued" in text
    assert "task queue is unreachable" in text
    assert "resume it" in text
    assert AuditEntry.objects.filter(
        object_type="homes.RefreshRun", object_id=str(run.pk), actor=user
    ).exists()

    # Nothing is lost: once the queue is back, the list's resume action runs it.
    response = client.post(
        reverse("admin:homes_refreshrun_changelist"),
        {"action": "resume", "_selected_action": [run.pk]},
        follow=True,
    )
    assert _messages(response) == [
        (INFO, f"Refresh {run.pk} resumes where each of its chunks stopped.")
    ]
    run.refresh_from_db()
    assert (run.status, run.processed, run.valued) == ("done", 2, 2)


def test_refresh_admin__resume_with_the_broker_down__staff_told_it_was_not_queued(
    transactional_db, tenant
):
    _homes(tenant)
    client = staff_client(staff_user(tenant.institution, "it"), tenant.staging)
    with broker_down():
        client.post(reverse("admin:homes_refreshrun_start"), follow=True)
        with environment_scope(tenant.staging):
            run = RefreshRun.objects.get()
        response = client.post(
            reverse("admin:homes_refreshrun_changelist"),
            {"action": "resume", "_selected_action": [run.pk]},
            follow=True,
        )
    assert response.status_code == 200
    [(level, text)] = _messages(response)
    assert level == WARNING
    assert f"Refresh {run.pk} could not be queued: the task queue is unreachable" in text
    run.refresh_from_db()
    assert run.status == "pending"


def test_homes_refresh_command__queue_with_the_broker_down__command_error_and_run_resumable(
    transactional_db, tenant
):
    _homes(tenant)
    options = {"institution": tenant.institution.slug, "environment": "staging"}
    with broker_down(), pytest.raises(CommandError) as refused:
        call_command("homes_refresh", queue=True, **options)
    with environment_scope(tenant.staging):
        run = RefreshRun.objects.get()
    assert run.status == "pending"
    assert str(refused.value) == (
        f"Refresh {run.pk} is recorded (pending) but could not be queued: the task queue is "
        f"unreachable. Once it is back, queue it with --resume {run.pk} --queue, or run it "
        f"here with --resume {run.pk}."
    )
    with broker_down(), pytest.raises(CommandError, match="could not be queued"):
        call_command("homes_refresh", queue=True, resume=run.pk, **options)

    call_command("homes_refresh", resume=run.pk, **options)  # what the message says works
    run.refresh_from_db()
    assert (run.status, run.processed) == ("done", 2)


def _waiting_run(tenant, homes, **kwargs):
    with environment_scope(tenant.staging):
        return refresh_waiting_start(
            environment=tenant.staging,
            property_ids=[h.pk for h in homes],
            reason="vendor values imported",
            chunk_size=2,
            **kwargs,
        )


def _after_the_grace(monkeypatch):
    later = timezone.now() + REFRESH_GRACE + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    return later


def test_equity_tick__waiting_run_never_queued__closed_once_the_tick_revalued_its_homes(
    tenant, monkeypatch, django_capture_on_commit_callbacks
):
    """A large vendor upload's run that the queue never took: the tick revalues its homes
    after the grace period, and the run shows done instead of pending for ever."""
    homes = _homes(tenant, n=4)
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        run = _waiting_run(tenant, homes[:3])
    assert (run.queued, run.status) == (False, "pending")
    later = _after_the_grace(monkeypatch)

    equity_tick.delay()

    with environment_scope(tenant.staging):
        run.refresh_from_db()
        assert (run.status, run.finished_at, run.progress_text) == ("done", later, "3/3 (100%)")
        assert list(run.chunks.values_list("status", flat=True)) == ["done", "done"]
        assert set(Valuation.objects.values_list("property_id", flat=True)) == {
            h.pk for h in homes[:3]
        }
        assert refresh_resume(environment=tenant.staging, run=run) == []  # nothing left
    [closing] = AuditEntry.objects.filter(
        object_id=str(run.pk), actor_label="homes.equity_tick"
    ).values_list("reason", flat=True)
    assert closing.startswith("refresh closed: none of its 3 properties is waiting")


@pytest.mark.parametrize("case", ["running", "pending, a worker on a chunk", "failed", "waiting"])
def test_equity_tick__waiting_run_going_failed_or_with_a_home_still_waiting__left_alone(
    tenant, monkeypatch, case
):
    """Only a run that never went and has nothing left to do is closed: not one a worker
    is on (its heartbeat is recent), nor a failed one (staff see its error), nor one with
    a home marked again within the grace period (the tick leaves that home to its task)."""
    homes = _homes(tenant, n=3)
    run = _waiting_run(tenant, homes, enqueue=False)
    later = _after_the_grace(monkeypatch)
    recently = later - timedelta(minutes=1)
    with environment_scope(tenant.staging):
        runs = RefreshRun.objects.filter(pk=run.pk)
        if case == "running":
            runs.update(status="running", started_at=recently, heartbeat_at=recently)
        elif case == "pending, a worker on a chunk":
            runs.update(heartbeat_at=recently)
        elif case == "failed":
            runs.update(status="failed", error="OperationalError: database went away")
        else:
            Property.objects.filter(pk=homes[1].pk).update(valuation_requested_at=recently)
        before = runs.values().get()

        equity_tick.delay()

        assert runs.values().get() == before
        assert not run.chunks.filter(status="done").exists()
    assert not AuditEntry.objects.filter(actor_label="homes.equity_tick").exists()


def test_vendor_upload__large_file_with_the_broker_down__stored_and_staff_told_it_waits(
    transactional_db, tenant, monkeypatch
):
    """The values are stored and the homes marked waiting; the page must not claim a
    revaluation "in the background" that was never queued."""
    monkeypatch.setattr(vendor, "INLINE_REVALUE_MAX", 1)
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    homes = [PropertyFactory(environment=env) for _ in range(2)]
    today = env.institution.today().isoformat()
    content = "property,value,fsd,as_of\n" + "".join(
        f"{home.external_id},{500000 + i},0.05,{today}\n" for i, home in enumerate(homes)
    )
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    with broker_down():
        response = client.post(
            reverse("admin:homes_vendorvalue_upload"),
            {"vendor": "acme", "file": SimpleUploadedFile("v.csv", content.encode())},
            follow=True,
        )
    assert response.status_code == 200
    with environment_scope(env):
        run = RefreshRun.objects.get()
        waiting = Property.objects.filter(valuation_requested_at__isnull=False).count()
    assert (run.scope, run.status, waiting) == ("waiting", "pending", 2)
    [(level, text)] = _messages(response)
    assert level == WARNING
    assert "Imported 2 vendor values; 2 properties wait for a valuation" in text
    assert f"refresh {run.pk}</a> is recorded but not queued" in text
    assert "in the background" not in text
