"""Failed background tasks: what an entry keeps, the admin that shows them, and pruning.

Entries written by a real worker: test_task_failures_worker.py.
"""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from celery.utils.serialization import get_pickleable_exception
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from institutions.models import AuditEntry, Environment, TaskFailure
from institutions.services.task_failures import (
    ARGUMENTS_MAX,
    MESSAGE_MAX,
    TRACEBACK_MAX,
    task_failure_record,
)
from institutions.tenancy import EnvironmentsFailed
from tests.conftest import staff_client
from tests.factories import UserFactory, staff_user


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def failure(environment=None, **fields) -> TaskFailure:
    defaults = {
        "task_name": "notifications.send_deliveries",
        "task_id": "0f0e",
        "exception_type": "ConnectionRefusedError",
        "message": "connection refused by smtp.example.test",
        "environment": environment,
    }
    return TaskFailure.objects.create(**{**defaults, **fields})


def test_environments_failed__pickled_by_celery__reaches_the_receivers_itself():
    failed = {7: _raised(LookupError("no row")), 9: _raised(ValueError("bad"))}
    exc = EnvironmentsFailed(failed, {8: 1}, {7: "A · Staging", 9: "B · Production"})
    # Celery gives task_failure receivers the exception only if it survives pickling.
    assert get_pickleable_exception(exc) is exc
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301  (bytes made here)
    assert str(copy) == str(exc)
    assert {pk: str(e) for pk, e in copy.failed.items()} == {
        7: "LookupError: no row",
        9: "ValueError: bad",
    }


@pytest.mark.django_db
def test_task_failure_record__environment_gone__recorded_without_it(tenant):
    gone = Environment.objects.order_by("-pk").first().pk + 100
    (entry,) = task_failure_record(
        task_name="homes.send_magic_link",
        task_id="abc",
        exception=_raised(Environment.DoesNotExist("Environment matching query does not exist.")),
        environment_id=gone,
    )
    entry.refresh_from_db()
    assert entry.environment is None
    assert entry.exception_type == "institutions.models.tenancy.Environment.DoesNotExist"
    assert "Environment.DoesNotExist" in entry.traceback  # formatted from the exception


@pytest.mark.django_db
def test_task_failure_record__huge_values__bounded_and_nul_free(tenant):
    (entry,) = task_failure_record(
        task_name="notifications.campaign_chunk",
        task_id="abc",
        exception=ValueError("x\x00" * MESSAGE_MAX),
        traceback="Traceback (most recent call last):\n" + "  frame\n" * 5000 + "ValueError: end",
        arguments="args=(" + "1, " * 2000 + ")",
        environment_id=tenant.production.pk,
    )
    entry.refresh_from_db()
    assert entry.environment == tenant.production
    assert len(entry.message) == MESSAGE_MAX
    assert "\x00" not in entry.message
    assert len(entry.traceback) == TRACEBACK_MAX
    assert entry.traceback.endswith("ValueError: end")  # the end is where the error is
    assert len(entry.arguments) == ARGUMENTS_MAX


@pytest.mark.django_db
def test_task_failure__applied_in_process_without_propagating__recorded_by_the_receiver(tenant):
    from tests.institutions.failing_tasks import tenant_raises

    result = tenant_raises.apply(args=[tenant.staging.pk, "broken"], throw=False)
    assert result.failed()
    (entry,) = TaskFailure.objects.all()
    assert (entry.task_name, entry.task_id) == ("tests.failures.tenant_raises", result.id)
    assert entry.environment == tenant.staging
    assert (entry.exception_type, entry.message) == ("ValueError", "broken")
    assert "'broken'" in entry.arguments


@pytest.mark.django_db
def test_task_failures_prune__beat_daily__forgets_entries_older_than_90_days(tenant):
    from institutions.tasks import task_failures_prune

    now = timezone.now()
    old = failure(tenant.production, at=now - timedelta(days=91))
    kept = failure(tenant.production, at=now - timedelta(days=89))
    platform = failure(None, at=now - timedelta(days=200))
    assert task_failures_prune() == 2
    assert list(TaskFailure.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not TaskFailure.objects.filter(pk__in=[old.pk, platform.pk]).exists()
    entry = PeriodicTask.objects.get(task="institutions.task_failures_prune")
    assert entry.enabled
    assert entry.interval.every * {"seconds": 1, "hours": 3600}[entry.interval.period] == 86400


def _changelist(client, **params):
    response = client.get(reverse("admin:institutions_taskfailure_changelist"), params)
    assert response.status_code == 200
    return {e.pk for e in response.context["cl"].result_list}


@pytest.mark.django_db
def test_task_failure_admin__institution_staff__see_their_environment_only__others_404(
    tenant, other_tenant
):
    mine = failure(tenant.production)
    sibling = failure(tenant.staging)
    theirs = failure(other_tenant.production)
    platform = failure(None, task_name="institutions.idempotency_prune")
    client = staff_client(staff_user(tenant.institution, "it"), tenant.production)
    assert _changelist(client) == {mine.pk}
    assert (
        client.get(reverse("admin:institutions_taskfailure_change", args=[mine.pk])).status_code
        == 200
    )
    for other in (sibling, theirs, platform):
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:institutions_taskfailure_{view}", args=[other.pk])
            assert client.get(url).status_code == 404, (view, other.environment)
    # The environment filter offers only what the list may show.
    page = client.get(reverse("admin:institutions_taskfailure_changelist")).content.decode()
    assert str(other_tenant.production) not in page


@pytest.mark.django_db
def test_task_failure_admin__read_only__marketing_sees_none__add_change_delete_refused(tenant):
    entry = failure(tenant.production)
    admin_client = staff_client(staff_user(tenant.institution, "admin"), tenant.production)
    assert admin_client.get(reverse("admin:institutions_taskfailure_add")).status_code == 403
    change = reverse("admin:institutions_taskfailure_change", args=[entry.pk])
    assert admin_client.post(change, {"message": "edited"}).status_code == 403
    delete = reverse("admin:institutions_taskfailure_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.message == "connection refused by smtp.example.test"

    marketing = staff_client(staff_user(tenant.institution, "marketing"), tenant.production)
    index = marketing.get(reverse("admin:index")).content.decode()
    assert "taskfailure" not in index
    assert marketing.get(reverse("admin:institutions_taskfailure_changelist")).status_code == 403
    assert marketing.get(change).status_code == 404


@pytest.mark.django_db
def test_task_failure_admin__platform_operator__sees_all_filters_searches_and_clears_audited(
    tenant, other_tenant
):
    a = failure(tenant.production, message="SMTP 451 try again later")
    b = failure(other_tenant.staging, task_name="notifications.daily", message="no row")
    platform = failure(None, task_name="institutions.idempotency_prune", message="disk full")
    operator = UserFactory(is_superuser=True)
    client = staff_client(operator)
    assert _changelist(client) == {a.pk, b.pk, platform.pk}
    assert _changelist(client, task_name="notifications.daily") == {b.pk}
    assert _changelist(client, environment__id__exact=tenant.production.pk) == {a.pk}
    assert _changelist(client, q="451") == {a.pk}
    newest_first = list(
        client.get(reverse("admin:institutions_taskfailure_changelist")).context["cl"].result_list
    )
    assert newest_first == [platform, b, a]

    delete = reverse("admin:institutions_taskfailure_delete", args=[a.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not TaskFailure.objects.filter(pk=a.pk).exists()
    audit = AuditEntry.objects.get(object_type="institutions.TaskFailure", object_id=str(a.pk))
    assert (audit.action, audit.actor, audit.environment) == (
        AuditEntry.Action.DELETE,
        operator,
        tenant.production,
    )
