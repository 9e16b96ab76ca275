"""The release actions behind the admin: each calls one service and says what happened."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.forms import modelform_factory
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from institutions import promotion
from institutions.admin_base import in_environment
from institutions.models import AuditEntry
from institutions.selectors import staff_roles
from institutions.services import audit_record, model_snapshot
from releases.forms import DecideForm, ReasonForm, ScheduleForm, SignForm
from releases.models import Release
from releases.selectors import release_audit, signoffs_of
from releases.services import (
    ReleaseRefused,
    missing_roles,
    policy_for,
    production_emergency_change,
    production_of,
    release_cancel,
    release_create,
    release_deploy,
    release_refresh,
    release_rollback,
    release_schedule,
    release_sign,
    release_signoffs_recheck,
    release_watch_decide,
    staging_of,
)
from releases.services.deploy import DEPLOY_ROLES
from releases.snapshot import retired_ids, specs


def _model_admin():
    from django.contrib import admin

    return admin.site._registry[Release]


def _detail_url(release: Release) -> str:
    return reverse("admin:releases_release_change", args=[release.pk])


def _environment(request):
    environment = getattr(request, "admin_environment", None)
    if environment is None:
        raise Http404("Choose an environment first.")
    return environment


def _run(request, release: Release, action, success: str):
    """Call a service; a refusal becomes a message that says why (nothing changed)."""
    try:
        result = action()
    except ReleaseRefused as refusal:
        messages.error(request, refusal.message)
        return redirect(_detail_url(release))
    messages.success(request, success)
    target = result if isinstance(result, Release) else release
    return redirect(_detail_url(target))


def _form_errors(request, release, form):
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else field
        messages.error(request, f"{label}: {' '.join(errors)}")
    return redirect(_detail_url(release))


def evidence_context(release: Release) -> dict:
    institution = release.environment.institution
    return {
        "release": release,
        "institution": institution,
        "tz": institution.tz,
        "signoffs": list(signoffs_of(release)),
        "missing": missing_roles(release) if release.state == Release.State.PENDING else [],
        "audit": list(release_audit(release)),
        "policy": policy_for(institution),
        "rollbacks": list(Release._base_manager.filter(rolls_back=release)),
        "generated_at": timezone.now(),
    }


def detail_context(request, model_admin, release: Release) -> dict:
    staging = release.environment
    release = release_refresh(environment=staging, release=release)
    # As staging's changes are, lapsed approvals are judged when the page is read, so an
    # approval whose signer has since lost the role never shows as standing.
    release_signoffs_recheck(release)
    release.refresh_from_db()
    institution = staging.institution
    roles = staff_roles(request.user, institution)
    signable = [r for r in release.required_roles if r in roles]
    can_deploy = bool(roles & DEPLOY_ROLES)  # scheduling is deploying, later
    with timezone.override(institution.tz):
        return {
            **evidence_context(release),
            "title": str(release),
            "opts": Release._meta,
            "roles": roles,
            "sign_form": SignForm(roles=signable) if signable else None,
            "schedule_form": ScheduleForm() if can_deploy else None,
            "reason_form": ReasonForm(),
            "decide_form": DecideForm(),
            "can_deploy": can_deploy,
        }


def _release(request, pk) -> Release:
    return _model_admin().release_or_404(request, pk)


@require_POST
def create(request):
    environment = staging_of(_environment(request))
    try:
        release = release_create(
            environment=environment,
            actor=request.user,
            title=request.POST.get("title", ""),
            notes=request.POST.get("notes", ""),
        )
    except ReleaseRefused as refusal:
        messages.error(request, refusal.message)
        return redirect("admin:releases_release_changelist")
    messages.success(request, f"{release} created: it now needs its sign-offs.")
    return redirect(_detail_url(release))


@require_POST
def sign(request, pk):
    release = _release(request, pk)
    roles = list(release.required_roles)
    form = SignForm(request.POST, roles=roles)
    if not form.is_valid():
        return _form_errors(request, release, form)
    data = form.cleaned_data
    return _run(
        request,
        release,
        lambda: release_sign(
            environment=release.environment,
            release=release,
            role=data["role"],
            decision=data["decision"],
            comment=data["comment"],
            actor=request.user,
        ),
        "Your sign-off is recorded.",
    )


@require_POST
def schedule(request, pk):
    release = _release(request, pk)
    with timezone.override(release.environment.institution.tz):
        form = ScheduleForm(request.POST)
        valid = form.is_valid()
    if not valid:
        return _form_errors(request, release, form)
    return _run(
        request,
        release,
        lambda: release_schedule(
            environment=release.environment,
            release=release,
            at=form.cleaned_data["at"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        ),
        "Scheduled: it deploys at that time.",
    )


@require_POST
def cancel(request, pk):
    return _run_with_reason(
        request, pk, release_cancel, "Cancelled: the release is approved again and not scheduled."
    )


def _run_with_reason(request, pk, service, done: str):
    """A release action whose only input is an optional recorded reason."""
    release = _release(request, pk)
    form = ReasonForm(request.POST)
    form.is_valid()
    return _run(
        request,
        release,
        lambda: service(
            environment=release.environment,
            release=release,
            reason=form.cleaned_data.get("reason", ""),
            actor=request.user,
        ),
        done,
    )


@require_POST
def deploy(request, pk):
    return _run_with_reason(
        request, pk, release_deploy, "Deployed: production now runs this release."
    )


@require_POST
def rollback(request, pk):
    return _run_with_reason(
        request, pk, release_rollback, "Rolled back: production runs the previous configuration."
    )


@require_POST
def decide(request, pk):
    release = _release(request, pk)
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _form_errors(request, release, form)
    return _run(
        request,
        release,
        lambda: release_watch_decide(
            environment=release.environment,
            release=release,
            keep=form.cleaned_data["keep"],
            comment=form.cleaned_data["comment"],
            actor=request.user,
        ),
        "Decision recorded.",
    )


def evidence(request, pk):
    """The evidence pack: a printable page an examiner can read, or its download."""
    release = _release(request, pk)
    with timezone.override(release.environment.institution.tz):
        html = render_to_string("releases/evidence.html", evidence_context(release), request)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    if request.GET.get("download"):
        slug = release.environment.institution.slug
        response["Content-Disposition"] = (
            f'attachment; filename="{slug}-release-{release.number}-evidence.html"'
        )
    return response


# -- production configuration: read-only, except an audited emergency change ------------------


def production_config(request):
    environment = _environment(request)
    if not staff_roles(request.user, environment.institution):
        raise PermissionDenied
    production = production_of(environment)
    retired = retired_ids(production)  # kept for member data, no longer configuration
    groups = []
    for spec in specs():
        rows = (
            spec.model._base_manager.filter(environment=production)
            .exclude(pk__in=retired.get(spec.label, []))
            .order_by("pk")
        )
        groups.append({"label": spec.label, "name": spec.verbose_name, "rows": list(rows)})
    return TemplateResponse(
        request,
        "admin/releases/production.html",
        {
            **_model_admin().admin_site.each_context(request),
            "title": "Production configuration",
            "groups": groups,
            "is_admin": "admin" in staff_roles(request.user, environment.institution),
        },
    )


def _formfield(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


def _add_errors(form, error: ValidationError) -> None:
    """Show a model's validation errors on the form (fields it lacks: above it)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _choices_in(form, environment) -> None:
    """Rows a production row may point to are production's own, not staging's or another
    institution's."""
    for field in form.fields.values():
        queryset = getattr(field, "queryset", None)
        if queryset is not None and any(
            f.name == "environment" for f in queryset.model._meta.concrete_fields
        ):
            field.queryset = queryset.model._base_manager.filter(environment=environment)


def _m2m_snapshot(obj, names) -> dict:
    if not names:  # today's release-managed models have none on the form
        return {}
    snapshot = model_snapshot(obj)
    return {name: sorted(snapshot.get(name) or [], key=str) for name in names}


def _emergency_save(form, *, production, actor, reason: str) -> None:
    """Save the emergency form as one change: the row through the audited service, then
    its many-to-many fields, audited too (the service's snapshot is taken before them)."""
    obj = form.save(commit=False)
    names = [f.name for f in obj._meta.many_to_many if f.name in form.cleaned_data]
    with transaction.atomic():
        before = _m2m_snapshot(obj, names)  # still the stored sets: save_m2m comes later
        production_emergency_change(environment=production, obj=obj, actor=actor, reason=reason)
        form.save_m2m()
        after = _m2m_snapshot(obj, names)
        changes = {
            name: {"before": before[name], "after": after[name]}
            for name in names
            if before[name] != after[name]
        }
        if changes:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                actor=actor,
                environment=production,
                obj=obj,
                changes=changes,
                reason=f"Emergency change: {reason.strip()}",
            )


def emergency_change(request, label, pk):
    environment = _environment(request)
    production = production_of(environment)
    if label not in {p.label for p in promotion.registered()}:
        raise Http404("Not release-managed configuration.")
    model = promotion.Promotable(label, ()).model
    obj = (
        model._base_manager.filter(pk=pk, environment=production)
        .exclude(pk__in=retired_ids(production).get(label, []))
        .first()
    )
    if obj is None:
        raise Http404("No such production configuration here.")
    if "admin" not in staff_roles(request.user, environment.institution):
        raise PermissionDenied("An emergency change needs the admin role.")
    exclude = ["environment", *next(p.exclude for p in promotion.registered() if p.label == label)]
    form_class = in_environment(
        modelform_factory(model, exclude=exclude, formfield_callback=_formfield)
    )
    reason_form = ReasonForm(request.POST or None)
    form = form_class(request.POST or None, request.FILES or None, instance=obj)
    _choices_in(form, production)
    if request.method == "POST" and form.is_valid() and reason_form.is_valid():
        try:
            _emergency_save(
                form,
                production=production,
                actor=request.user,
                reason=reason_form.cleaned_data["reason"],
            )
        except ReleaseRefused as refusal:
            reason_form.add_error("reason", refusal.message)
        except ValidationError as error:  # the model's own checks, run again on save
            _add_errors(form, error)
        else:
            messages.warning(
                request,
                "Emergency change saved and audited. Staging still differs: the next release "
                "from staging will show it.",
            )
            return redirect("admin:releases_release_production")
    return TemplateResponse(
        request,
        "admin/releases/emergency.html",
        {
            **_model_admin().admin_site.each_context(request),
            "title": f"Emergency change: {obj}",
            "form": form,
            "reason_form": reason_form,
            "object": obj,
        },
        status=400 if request.method == "POST" else 200,
    )
