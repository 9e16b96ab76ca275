from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from institutions.admin_base import (
    NotFoundInsteadOfRedirectMixin,
    ReadOnlyAdmin,
    TenantAdmin,
)
from institutions.models import AuditEntry, Branding, Domain, Institution, StaffRole
from institutions.selectors import staff_institutions, staff_roles
from institutions.services import branding_update, institution_update


@admin.register(Institution)
class InstitutionAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    list_display = ["display_name", "slug", "nmls_id", "time_zone", "hosts"]
    search_fields = ["display_name", "slug", "legal_name"]
    readonly_fields = ["slug", "created_at"]
    fields = [
        "slug",
        "display_name",
        "legal_name",
        "nmls_id",
        "time_zone",
        "postal_address",
        "digital_banking_origins",
        "created_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk__in=staff_institutions(request.user))

    def has_module_permission(self, request):
        return request.user.is_superuser or staff_institutions(request.user).exists()

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_superuser or staff_institutions(request.user).exists()
        return "admin" in staff_roles(request.user, obj)

    def has_add_permission(self, request):
        # New institutions are created with both environments by the institution_create
        # service (operators use the demo or a command); the admin form cannot do that.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Hosts")
    def hosts(self, obj):
        return format_html(
            "{}<br>{}",
            *(env.host for env in obj.environments.all()),
        )

    def save_model(self, request, obj, form, change):
        institution_update(
            institution=obj,
            actor=request.user,
            **{name: form.cleaned_data[name] for name in form.changed_data},
        )


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    """Custom domains: platform operators only (they route traffic across tenants)."""

    list_display = ["domain", "environment"]


@admin.register(StaffRole)
class StaffRoleAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    list_display = ["user", "institution", "role", "granted_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email"]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).filter(institution__in=staff_institutions(request.user))
        )

    def has_module_permission(self, request):
        return staff_institutions(request.user).exists()

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)


@admin.register(AuditEntry)
class AuditEntryAdmin(NotFoundInsteadOfRedirectMixin, ReadOnlyAdmin):
    list_display = ["at", "who", "environment", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type", "environment__kind", "at"]
    search_fields = ["object_repr", "object_id", "actor__username", "actor_label", "reason"]
    date_hierarchy = "at"
    readonly_fields = [
        "at",
        "actor",
        "actor_label",
        "institution",
        "environment",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_table",
        "reason",
    ]
    exclude = ["changes"]

    def get_queryset(self, request):
        environment = getattr(request, "admin_environment", None)
        queryset = super().get_queryset(request).select_related("actor", "environment")
        if request.user.is_superuser and environment is None:
            return queryset
        if environment is None:
            return queryset.none()
        return queryset.filter(institution=environment.institution)

    def has_module_permission(self, request):
        return request.user.is_superuser or bool(staff_institutions(request.user).exists())

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    @admin.display(description="Who")
    def who(self, obj):
        return obj.actor or obj.actor_label or "system"

    @admin.display(description="Changes")
    def changes_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (field, change.get("before"), change.get("after"))
                for field, change in (obj.changes or {}).items()
            ),
        )
        return format_html(
            "<table><tr><th>Field</th><th>Before</th><th>After</th></tr>{}</table>", rows
        )


@admin.register(Branding)
class BrandingAdmin(TenantAdmin):
    change_roles = frozenset({"admin", "marketing"})
    production_read_only = True
    change_form_template = "admin/institutions/branding/change_form.html"
    list_display = ["display_name", "primary_color", "accent_color", "font", "environment"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False  # one branding per environment, created with the institution

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        branding_update(
            environment=self._environment(request),
            actor=request.user,
            **{name: form.cleaned_data[name] for name in form.changed_data},
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        for name in ("primary_color", "accent_color"):
            if name in form.base_fields:
                form.base_fields[name].widget.input_type = "color"
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        environment = self._environment(request)
        context["preview_institution"] = environment.institution if environment else None
        context["members_url"] = (
            environment.base_url + reverse("homes:home", urlconf="chimney.urls_tenant")
            if environment
            else ""
        )
        return super().render_change_form(request, context, add, change, form_url, obj)


from institutions import admin_keys  # noqa: E402, F401  (registers the API key admin)
