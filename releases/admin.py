"""Releases in the admin: the list, a readable side-by-side diff, and one form per action."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from institutions.admin_base import NotFoundInsteadOfRedirectMixin, TenantAdmin
from institutions.models import AuditEntry
from institutions.selectors import staff_institutions, staff_roles
from institutions.services import audit_record, audited_save, model_snapshot
from releases import admin_staging, admin_views
from releases.forms import ReleasePolicyForm
from releases.models import DeployWindow, FreezePeriod, Release, ReleasePolicy
from releases.services import policy_for, staging_of


@admin.register(Release)
class ReleaseAdmin(TenantAdmin):
    """Releases live in staging; staff see them from either environment of the institution."""

    change_roles = frozenset()  # every change goes through the action forms below
    list_display = [
        "number",
        "title",
        "kind",
        "state",
        "author",
        "created_at",
        "scheduled_for",
        "watch_state",
    ]
    list_display_links = ["number", "title"]
    list_filter = ["state", "kind", "watch_state"]
    change_list_template = "admin/releases/release/change_list.html"

    def get_queryset(self, request):
        environment = self._environment(request)
        if environment is None:
            return Release._base_manager.none()
        return Release._base_manager.filter(environment=staging_of(environment)).select_related(
            "author", "environment__institution"
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path("create/", view(admin_views.create), name="releases_release_create"),
            path(
                "production/",
                view(admin_views.production_config),
                name="releases_release_production",
            ),
            path(
                "staging-data/",
                view(admin_staging.staging_data),
                name="releases_release_staging_data",
            ),
            path(
                "emergency/<str:label>/<int:pk>/",
                view(admin_views.emergency_change),
                name="releases_release_emergency",
            ),
        ]
        for action in ("sign", "schedule", "cancel", "deploy", "rollback", "decide", "evidence"):
            urls.append(
                path(
                    f"<int:pk>/{action}/",
                    view(getattr(admin_views, action)),
                    name=f"releases_release_{action}",
                )
            )
        return urls + super().get_urls()

    def release_or_404(self, request, pk) -> Release:
        if not self.has_view_permission(request):
            raise Http404("No release here.")
        release = self.get_queryset(request).filter(pk=pk).first()
        if release is None:
            raise Http404("No release with this id here.")
        return release

    def change_view(self, request, object_id, form_url="", extra_context=None):
        release = self.release_or_404(request, unquote(object_id))
        return TemplateResponse(
            request,
            "admin/releases/release/detail.html",
            {
                **self.admin_site.each_context(request),
                **admin_views.detail_context(request, self, release),
            },
        )


class PolicyInline(admin.TabularInline):
    """Windows and freezes follow the policy's own rule: staff see, the admin role edits."""

    extra = 0

    def has_view_permission(self, request, obj=None):
        if obj is None:  # the parent admin already limits policies to the staff's own
            return request.user.is_superuser or staff_institutions(request.user).exists()
        return bool(staff_roles(request.user, obj.institution))

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_view_permission(request)
        return "admin" in staff_roles(request.user, obj.institution)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class DeployWindowInline(PolicyInline):
    model = DeployWindow


class FreezePeriodInline(PolicyInline):
    model = FreezePeriod


@admin.register(ReleasePolicy)
class ReleasePolicyAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    """The institution's signers, deploy windows, freezes and watch (admin role changes it)."""

    form = ReleasePolicyForm
    inlines = [DeployWindowInline, FreezePeriodInline]
    list_display = ["institution", "required_roles", "watch_minutes", "auto_rollback"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).filter(institution__in=staff_institutions(request.user))
        )

    def changelist_view(self, request, extra_context=None):
        environment = getattr(request, "admin_environment", None)
        if environment is not None:
            policy_for(environment.institution)  # every institution has one to edit
        return super().changelist_view(request, extra_context)

    def has_module_permission(self, request):
        return request.user.is_superuser or staff_institutions(request.user).exists()

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return "admin" in staff_roles(request.user, obj.institution)

    def save_model(self, request, obj, form, change):
        audited_save(obj, actor=request.user, institution=obj.institution)

    def save_formset(self, request, form, formset, change):
        """Windows and freezes, each audited against its stored row (created, changed or
        deleted), in one transaction with the policy."""
        institution = form.instance.institution
        with transaction.atomic():
            saved = formset.save(commit=False)
            for obj in formset.deleted_objects:
                # The form has already put its posted values on the instance: the stored
                # row is what is being deleted.
                stored = type(obj)._base_manager.filter(pk=obj.pk).first() or obj
                audit_record(
                    action=AuditEntry.Action.DELETE,
                    actor=request.user,
                    institution=institution,
                    obj=stored,
                    before=model_snapshot(stored),
                )
                obj.delete()
            for obj in saved:  # new rows are audited as created, changed ones with before
                audited_save(obj, actor=request.user, institution=institution)
            formset.save_m2m()
