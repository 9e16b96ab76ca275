"""Refresh runs started and resumed by staff (audited), and the refresh command."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from homes.models import RefreshRun
from homes.services import RefreshInProgress, refresh_continue, refresh_run, refresh_start
from homes.services.refresh import REFRESH_STALE_AFTER, RefreshStopped
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.homes.factories import PropertyFactory, home_settings_factory

pytestmark = pytest.mark.django_db


def _refresh_entries(tenant):
    return list(
        AuditEntry.objects.filter(environment=tenant.staging)
        .filter(object_type__icontains="refresh")
        .values_list("action", "actor__username", "object_id")
    )


def test_refresh_admin__start__is_in_the_audit_trail(tenant, django_capture_on_commit_callbacks):
    """Starting a refresh revalues every home of the environment: a staff change the audit
    trail must show (who, when, which run), as it shows a vendor upload."""
    home_settings_factory(tenant.staging, provider_order=["mock"])
    PropertyFactory(environment=tenant.staging)
    user = staff_user(tenant.institution, "it")
    client = staff_client(user, tenant.staging)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("admin:homes_refreshrun_start")).status_code == 302
    with environment_scope(tenant.staging):
        run = RefreshRun.objects.get()
    entries = _refresh_entries(tenant)
    assert entries, "no audit entry for the refresh run a staff member started"
    assert (user.username, str(run.pk)) in [(a, o) for _, a, o in entries]


def _interrupted_run(tenant):
    """A two-home run of staging stopped after its first batch (one home revalued)."""
    home_settings_factory(tenant.staging, provider_order=["mock"])
    PropertyFactory(environment=tenant.staging)
    PropertyFactory(environment=tenant.staging)
    with environment_scope(tenant.staging):
        run = refresh_start(environment=tenant.staging, enqueue=False, chunk_size=1)
        with pytest.raises(RefreshStopped):
            refresh_run(environment=tenant.staging, run=run, batch_size=1, stop_after=1)
    return run


def test_refresh_admin__resume_action__is_in_the_audit_trail(
    tenant, django_capture_on_commit_callbacks
):
    run = _interrupted_run(tenant)
    AuditEntry.objects.all().delete()
    user = staff_user(tenant.institution, "it")
    client = staff_client(user, tenant.staging)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:homes_refreshrun_changelist"),
            {"action": "resume", "_selected_action": [run.pk]},
        )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "done"  # the resume itself works
    assert _refresh_entries(tenant), "no audit entry for the resume a staff member asked for"


def test_homes_refresh_command__unknown_run__is_a_command_error_not_a_traceback(tenant):
    with pytest.raises(CommandError):
        call_command(
            "homes_refresh",
            institution=tenant.institution.slug,
            environment="staging",
            resume=999_999,
        )


def test_refresh__home_deleted_during_the_run__done_run_shows_100_percent(tenant):
    """A run that finished shows "done" with its progress; a home deleted after the run
    started leaves it at 50% for ever (total stays the count at start)."""
    home_settings_factory(tenant.staging, provider_order=["mock"])
    first = PropertyFactory(environment=tenant.staging)
    PropertyFactory(environment=tenant.staging)
    with environment_scope(tenant.staging):
        run = refresh_start(environment=tenant.staging, enqueue=False)
        first.delete()
        run = refresh_run(environment=tenant.staging, run=run)
    assert run.status == "done"
    assert run.percent == 100, run.progress_text


def _going_run(tenant):
    """A two-home run half done whose worker is still on it (status running, heartbeat at
    its last batch), as a worker busy with the second batch, or just killed, leaves it."""
    run = _interrupted_run(tenant)
    with environment_scope(tenant.staging):
        RefreshRun.objects.filter(pk=run.pk).update(status="running", error="")
        run.refresh_from_db()
    return run


def test_refresh_start__while_a_run_is_going__refused_and_nothing_recorded(tenant):
    """A second refresh while one is running would revalue every home twice: it is refused
    with the running run's progress, and neither a run nor an audit entry is made."""
    running = _going_run(tenant)
    AuditEntry.objects.all().delete()
    with environment_scope(tenant.staging), pytest.raises(RefreshInProgress) as refused:
        refresh_start(environment=tenant.staging, enqueue=False)
    assert f"Refresh {running.pk}" in str(refused.value)
    assert "1/2 (50%)" in str(refused.value)
    with environment_scope(tenant.staging):
        assert list(RefreshRun.objects.values_list("pk", flat=True)) == [running.pk]
    assert not AuditEntry.objects.exists()


def test_refresh_start__after_the_run_finished_or_went_quiet__allowed(tenant):
    """Only a run that is going blocks a new one: a finished run does not, nor one that no
    worker touched for REFRESH_STALE_AFTER (interrupted; staff may start afresh)."""
    run = _going_run(tenant)
    quiet = timezone.now() - REFRESH_STALE_AFTER - timedelta(seconds=1)
    with environment_scope(tenant.staging):
        RefreshRun.objects.filter(pk=run.pk).update(created_at=quiet, heartbeat_at=quiet)
        second = refresh_start(environment=tenant.staging, enqueue=False)
        refresh_run(environment=tenant.staging, run=second)
        second.refresh_from_db()
        assert second.status == "done"
        third = refresh_start(environment=tenant.staging, enqueue=False)
    assert third.pk not in (run.pk, second.pk)


def test_refresh_start__queued_run_not_yet_picked_up__blocks_a_second(tenant):
    home_settings_factory(tenant.staging, provider_order=["mock"])
    with environment_scope(tenant.staging):
        queued = refresh_start(environment=tenant.staging, enqueue=False)
        assert queued.status == "pending"
        with pytest.raises(RefreshInProgress, match="still pending"):
            refresh_start(environment=tenant.staging, enqueue=False)


def test_refresh_start__failed_run__does_not_block(tenant):
    """A run whose worker failed (its error recorded) has no worker left on it."""
    run = _going_run(tenant)
    with environment_scope(tenant.staging):
        RefreshRun.objects.filter(pk=run.pk).update(status="failed")
        assert refresh_start(environment=tenant.staging, enqueue=False).pk != run.pk


def test_refresh_start__other_environment_running__does_not_block(tenant):
    _going_run(tenant)
    home_settings_factory(tenant.production, provider_order=["mock"])
    with environment_scope(tenant.production):
        assert refresh_start(environment=tenant.production, enqueue=False).total == 0


def test_refresh_admin__start_while_running__error_message_and_no_second_run(tenant):
    running = _going_run(tenant)
    client = staff_client(staff_user(tenant.institution, "it"), tenant.staging)
    response = client.post(reverse("admin:homes_refreshrun_start"), follow=True)
    assert response.status_code == 200
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert shown == [("error", str(RefreshInProgress(running)))]
    with environment_scope(tenant.staging):
        assert RefreshRun.objects.count() == 1


def test_homes_refresh_command__while_running__command_error_names_the_run(tenant):
    running = _going_run(tenant)
    with pytest.raises(CommandError, match=f"Refresh {running.pk} of this environment"):
        call_command("homes_refresh", institution=tenant.institution.slug, environment="staging")


def _failed_and_newer_going(tenant):
    """The interrupted run (failed), and a newer one started since, pending."""
    old = _interrupted_run(tenant)
    with environment_scope(tenant.staging):
        going = refresh_start(environment=tenant.staging, enqueue=False)
        old.refresh_from_db()
    assert (old.status, going.status) == ("failed", "pending")
    return old, going


def test_refresh_admin__resume_while_another_run_is_going__refused_with_a_message(
    tenant, django_capture_on_commit_callbacks
):
    """Starting a refresh while one is going is refused (it would revalue every home
    twice); resuming an interrupted run while a newer one is going is the same second
    refresh: refused too, with a message, the interrupted run left as it was."""
    old, going = _failed_and_newer_going(tenant)
    client = staff_client(staff_user(tenant.institution, "it"), tenant.staging)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:homes_refreshrun_changelist"),
            {"action": "resume", "_selected_action": [old.pk]},
            follow=True,
        )
    assert response.status_code == 200
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert shown == [("error", f"Refresh {old.pk} not resumed: {RefreshInProgress(going)}")]
    with environment_scope(tenant.staging):
        old.refresh_from_db()
        going.refresh_from_db()
    assert (old.status, old.progress_text) == ("failed", "1/2 (50%)")
    assert going.status == "pending"


def test_homes_refresh_command__resume_while_another_run_is_going__command_error(tenant):
    old, going = _failed_and_newer_going(tenant)
    with pytest.raises(CommandError, match=f"Refresh {going.pk} of this environment"):
        call_command(
            "homes_refresh",
            institution=tenant.institution.slug,
            environment="staging",
            resume=old.pk,
        )
    with environment_scope(tenant.staging):
        old.refresh_from_db()
    assert old.status == "failed"


def test_refresh_continue__two_interrupted_runs_resumed_at_once__the_second_is_refused(tenant):
    """Resuming takes the run back to pending on the environment's row, as starting makes
    one: staff resuming two interrupted runs at the same moment do not set both going."""
    first = _interrupted_run(tenant)
    with environment_scope(tenant.staging):
        second = refresh_start(environment=tenant.staging, enqueue=False)
        RefreshRun.objects.filter(pk=second.pk).update(status="failed")
        refresh_continue(environment=tenant.staging, run=first, enqueue=False)
        first.refresh_from_db()
        assert first.status == "pending"
        with pytest.raises(RefreshInProgress, match=f"Refresh {first.pk} of this environment"):
            refresh_continue(environment=tenant.staging, run=second, enqueue=False)
        refresh_continue(environment=tenant.staging, run=first, enqueue=False)  # itself: fine
        refresh_run(environment=tenant.staging, run=first)
        first.refresh_from_db()
        second.refresh_from_db()
    assert (first.status, second.status) == ("done", "failed")


def test_refresh_admin__production_order_lists_only_the_mock__run_failed_saying_why(
    tenant, django_capture_on_commit_callbacks
):
    """Production skips the mock: with an order that lists nothing else (promoted from a
    staging of mock homes) its refreshes valued no home and reported "done". The run
    fails, its error naming the provider order, in the admin and from the command."""
    env = tenant.production
    home_settings_factory(env, provider_order=["mock"])
    PropertyFactory(environment=env)
    client = staff_client(staff_user(tenant.institution, "it"), env)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("admin:homes_refreshrun_start")).status_code == 302
    with environment_scope(env):
        run = RefreshRun.objects.get()
    assert (run.status, run.valued) == ("failed", 0)
    assert 'provider_order ["mock"] lists none that production uses' in run.error
    page = client.get(reverse("admin:homes_refreshrun_change", args=[run.pk]))
    assert "provider_order [&quot;mock&quot;] lists none that production uses" in (
        page.content.decode()
    )
    with pytest.raises(CommandError, match=f"Refresh {run.pk} failed: No valuation provider"):
        call_command(
            "homes_refresh",
            institution=tenant.institution.slug,
            environment="production",
            resume=run.pk,
        )
