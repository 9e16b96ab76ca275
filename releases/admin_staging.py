"""Staging data in the admin: mock data for a region, or an anonymized copy of production.

Both replace staging's members, so they need the IT or admin role; each is checked at once
(a refusal says why and records nothing) and then run by a worker, with its state here.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from institutions.selectors import staff_roles
from releases.forms import MockDataForm, RefreshForm
from releases.models import StagingDataJob
from releases.services import ReleaseRefused, staging_of
from releases.staging_data.common import RUN_ROLES
from releases.staging_data.jobs import job_progress, staging_job_request
from releases.staging_data.regions import REGIONS

RECENT_JOBS = 10


def _page(request, staging, mock_form, refresh_form, status=200):
    jobs = list(
        StagingDataJob._base_manager.filter(environment=staging).select_related("requested_by")[
            :RECENT_JOBS
        ]
    )
    for job in jobs:
        job.progress = job_progress(job) if job.status == StagingDataJob.Status.RUNNING else None
    return TemplateResponse(
        request,
        "admin/releases/staging_data.html",
        {
            **admin.site.each_context(request),
            "title": f"Staging data · {staging.institution}",
            "mock_form": mock_form,
            "refresh_form": refresh_form,
            "jobs": jobs,
            "can_run": bool(staff_roles(request.user, staging.institution) & RUN_ROLES),
        },
        status=status,
    )


def staging_data(request):
    environment = getattr(request, "admin_environment", None)
    if environment is None or not staff_roles(request.user, environment.institution):
        raise Http404("Choose an environment of your institution first.")
    staging = staging_of(environment)
    regions = [(slug, region.name) for slug, region in sorted(REGIONS.items())]
    slug = staging.institution.slug
    mock_form = MockDataForm(regions=regions)
    refresh_form = RefreshForm(slug=slug)
    if request.method != "POST":
        return _page(request, staging, mock_form, refresh_form)
    kind = request.POST.get("kind")
    if kind == StagingDataJob.Kind.MOCK:
        mock_form = MockDataForm(request.POST, regions=regions)
        form = mock_form
    elif kind == StagingDataJob.Kind.REFRESH:
        refresh_form = RefreshForm(request.POST, slug=slug)
        form = refresh_form
    else:
        raise Http404("No such staging data run.")
    if not form.is_valid():
        return _page(request, staging, mock_form, refresh_form, status=400)
    parameters = dict(form.cleaned_data) if kind == StagingDataJob.Kind.MOCK else {}
    try:
        job = staging_job_request(
            environment=staging, kind=kind, parameters=parameters, actor=request.user
        )
    except ReleaseRefused as refusal:
        messages.error(request, refusal.message)
        return _page(request, staging, mock_form, refresh_form, status=400)
    messages.success(
        request,
        f"{job.get_kind_display()} queued: staging's members will be replaced when it runs. "
        "Its state is below.",
    )
    return redirect("admin:releases_release_staging_data")
