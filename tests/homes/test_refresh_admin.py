"""Refresh runs started and resumed by staff (audited), and the refresh command."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from homes.models import RefreshRun
from homes.services import refresh_run, refresh_start
from homes.services.refresh import RefreshStopped
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


def test_refresh_admin__resume_action__is_in_the_audit_trail(
    tenant, django_capture_on_commit_callbacks
):
    home_settings_factory(tenant.staging, provider_order=["mock"])
    PropertyFactory(environment=tenant.staging)
    PropertyFactory(environment=tenant.staging)
    with environment_scope(tenant.staging):
        run = refresh_start(environment=tenant.staging, enqueue=False, chunk_size=1)
        with pytest.raises(RefreshStopped):
            refresh_run(environment=tenant.staging, run=run, batch_size=1, stop_after=1)
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
