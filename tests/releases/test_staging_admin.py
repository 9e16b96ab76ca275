"""Staging data from the admin: each run is checked at once, then run by a worker, with its
state on the page; refusals say why and record nothing."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from homes.models import Member, Property
from institutions.models import AuditEntry
from releases.models import StagingDataJob
from releases.staging_data.jobs import progress_key
from tests.conftest import staff_client
from tests.factories import MemberFactory
from tests.homes.factories import PropertyFactory
from tests.releases.test_admin import messages_of

URL = reverse("admin:releases_release_staging_data")


def refresh(client, slug):
    return client.post(URL, {"kind": "refresh", "confirm": slug}, follow=True)


@pytest.mark.django_db
def test_admin_refresh__it_confirms__worker_copies_production_and_the_page_says_so(
    tenant, people, django_capture_on_commit_callbacks
):
    for n in range(3):
        PropertyFactory(environment=tenant.production, street=f"{n + 10} Madrona Dr")
    MemberFactory(environment=tenant.staging)
    client = staff_client(people.it, tenant.staging)
    assert "Anonymized copy of production" in client.get(URL).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = refresh(client, tenant.institution.slug)

    assert "queued" in " ".join(messages_of(response))
    job = StagingDataJob._base_manager.get(environment=tenant.staging)
    assert (job.kind, job.status, job.requested_by) == ("refresh", "done", people.it)
    assert job.result["copied"]["homes.Property"] == 3
    assert Member._base_manager.filter(environment=tenant.staging).count() == 3
    page = client.get(URL).content.decode()
    assert "Done" in page
    assert job.result["summary"] in page
    assert AuditEntry.objects.filter(
        environment=tenant.staging, object_repr__startswith="Staging replaced"
    ).exists()


@pytest.mark.django_db
def test_admin_refresh__from_the_production_view__still_goes_into_staging(
    tenant, people, django_capture_on_commit_callbacks
):
    real = MemberFactory(environment=tenant.production, first_name="Octavius")
    client = staff_client(people.it, tenant.production)
    with django_capture_on_commit_callbacks(execute=True):
        refresh(client, tenant.institution.slug)
    assert StagingDataJob._base_manager.get().environment == tenant.staging
    assert list(Member._base_manager.filter(environment=tenant.production)) == [real]
    assert Member._base_manager.filter(environment=tenant.staging).count() == 1


@pytest.mark.django_db
def test_admin_staging_data__refusals__nothing_recorded(tenant, people):
    slug = tenant.institution.slug
    it = staff_client(people.it, tenant.staging)
    response = refresh(it, slug)
    assert response.status_code == 400
    assert "Production has no members yet" in " ".join(messages_of(response))

    MemberFactory(environment=tenant.production)
    response = it.post(URL, {"kind": "refresh", "confirm": "wrong"})
    assert response.status_code == 400
    assert f"Type &quot;{slug}&quot; to confirm." in response.content.decode()

    marketing = staff_client(people.marketing, tenant.staging)
    assert "disabled" in marketing.get(URL).content.decode()
    response = refresh(marketing, slug)
    assert "IT or admin role" in " ".join(messages_of(response))

    response = it.post(URL, {"kind": "mock", "region": "atlantis", "count": 10, "seed": 1})
    assert response.status_code == 400
    assert not StagingDataJob._base_manager.exists()
    assert not AuditEntry.objects.filter(object_type="releases.StagingDataJob").exists()


@pytest.mark.django_db
def test_admin_staging_data__one_run_at_a_time(tenant, people):
    MemberFactory(environment=tenant.production)
    client = staff_client(people.it, tenant.staging)
    refresh(client, tenant.institution.slug)  # queued: the worker has not taken it yet
    response = refresh(client, tenant.institution.slug)
    assert "already queued" in " ".join(messages_of(response))
    assert StagingDataJob._base_manager.count() == 1


@pytest.mark.django_db
def test_admin_refresh__fails_when_it_runs__failure_shown__staging_unchanged(
    tenant, people, django_capture_on_commit_callbacks
):
    production_member = MemberFactory(environment=tenant.production)
    kept = MemberFactory(environment=tenant.staging)
    client = staff_client(people.it, tenant.staging)
    with django_capture_on_commit_callbacks(execute=True):
        refresh(client, tenant.institution.slug)
        production_member.delete()  # production emptied before the worker took the run
    job = StagingDataJob._base_manager.get()
    assert job.status == StagingDataJob.Status.FAILED
    assert "Production has no members yet" in job.error
    assert list(Member._base_manager.filter(environment=tenant.staging)) == [kept]
    assert job.error in client.get(URL).content.decode()


@pytest.mark.django_db
def test_admin_staging_data__running_job__shows_its_progress(tenant, people):
    job = StagingDataJob._base_manager.create(
        environment=tenant.staging, kind="mock", status="running", parameters={"count": 1000}
    )
    cache.set(progress_key(job), ("members", 500, 1000))
    page = staff_client(people.admin, tenant.staging).get(URL).content.decode()
    assert "Running: members 500/1000" in page


@pytest.mark.django_db
def test_admin_mock__queued_and_run__members_with_homes(
    tenant, people, django_capture_on_commit_callbacks
):
    client = staff_client(people.admin, tenant.staging)
    form = {"kind": "mock", "region": "king-county-wa", "count": 25, "seed": 4}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {**form, "history_months": 6})
    job = StagingDataJob._base_manager.get()
    assert job.status == StagingDataJob.Status.DONE, job.error
    assert job.parameters["count"] == 25
    assert job.result["members"] == 25
    assert Property._base_manager.filter(environment=tenant.staging).exists()
