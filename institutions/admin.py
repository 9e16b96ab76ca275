from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters

from institutions.admin_base import (
    NotFoundInsteadOfRedirectMixin,
    ReadOnlyAdmin,
    TenantAdmin,
)
from institutions.models import AuditEntry, Branding, Domain, Institution, StaffRole
from institutions.selectors import staff_institutions, staff_roles
from institutions.services import (
    audit_record,
    audited_save,
    branding_update,
    institution_update,
    model_snapshot,
    staff_role_grant,
    staff_role_revoke,
    tenant_object_delete,
)
from institutions.services.audit import REDACTED


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


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ["domain", "environment"]

    def clean_domain(self):
        # Hosts are resolved in lower case: a domain saved as typed ("Home.Example.COM")
        # would never match, and would slip past the uniqueness check beside its lower
        # case twin. Normalised here, before the form's own validation runs.
        return self.cleaned_data["domain"].strip().lower().rstrip(".")


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    """Custom domains: platform operators only (they route traffic across tenants)."""

    form = DomainForm
    list_display = ["domain", "environment"]

    def save_model(self, request, obj, form, change):
        obj.domain = obj.domain.strip().lower().rstrip(".")
        audited_save(obj, actor=request.user, environment=obj.environment)

    def delete_model(self, request, obj):
        tenant_object_delete(environment=obj.environment, obj=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("environment"):
            self.delete_model(request, obj)


@admin.register(StaffRole)
class StaffRoleAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    """Roles are granted and revoked by the services: audited, and the grantee made staff."""

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

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if change:  # a changed row is the old role revoked and the new one granted
                old = StaffRole.objects.select_related("user", "institution").get(pk=obj.pk)
                if (old.user_id, old.institution_id, old.role) == (
                    obj.user_id,
                    obj.institution_id,
                    obj.role,
                ):
                    return
                staff_role_revoke(
                    institution=old.institution, user=old.user, role=old.role, actor=request.user
                )
            grant = staff_role_grant(
                institution=obj.institution, user=obj.user, role=obj.role, actor=request.user
            )
        obj.pk, obj.granted_at = grant.pk, grant.granted_at

    def delete_model(self, request, obj):
        staff_role_revoke(
            institution=obj.institution, user=obj.user, role=obj.role, actor=request.user
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("user", "institution"):
            self.delete_model(request, obj)


class AuditScopeFilter(admin.SimpleListFilter):
    """Operators' filter: an institution's entries or the platform's own (staff accounts)."""

    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("institution", "Institution"), ("platform", "Platform (no institution)")]

    def queryset(self, request, queryset):
        if self.value() == "platform":
            return queryset.filter(institution__isnull=True)
        if self.value() == "institution":
            return queryset.filter(institution__isnull=False)
        return queryset


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
        if environment is None:
            return queryset if request.user.is_superuser else queryset.none()
        shown = Q(institution=environment.institution)
        if request.user.is_superuser:
            # Changes to staff accounts (created, made superuser, password set, deleted)
            # belong to no institution: operators read them beside the selected one.
            shown |= Q(institution__isnull=True)
        return queryset.filter(shown)

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return [AuditScopeFilter, *self.list_filter]
        return self.list_filter

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


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """Django's user admin, with every save, password change and deletion audited (the
    password hash never: snapshots redact it)."""

    def save_model(self, request, obj, form, change):
        if change:  # group and permission changes are saved after, by save_related
            obj._audit_access_before = _access(obj)
        audited_save(obj, actor=request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before = getattr(form.instance, "_audit_access_before", None)
        after = _access(form.instance)
        changes = {
            name: {"before": before[name], "after": after[name]}
            for name in after
            if before is not None and before[name] != after[name]
        }
        if changes:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                actor=request.user,
                obj=form.instance,
                changes=changes,
            )

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        user = self.get_object(request, unquote(id))
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if user is not None:
                before = user.password
                user.refresh_from_db(fields=["password"])
                if user.password != before:
                    audit_record(
                        action=AuditEntry.Action.UPDATE,
                        actor=request.user,
                        obj=user,
                        changes={"password": {"before": REDACTED, "after": REDACTED}},
                        reason="password set in the admin",
                    )
        return response

    def delete_model(self, request, obj):
        with transaction.atomic():
            for grant in StaffRole.objects.filter(user=obj).select_related("institution"):
                staff_role_revoke(
                    institution=grant.institution, user=obj, role=grant.role, actor=request.user
                )
            audit_record(
                action=AuditEntry.Action.DELETE,
                actor=request.user,
                obj=obj,
                before=model_snapshot(obj),
            )
            obj.delete()

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _access(user) -> dict[str, list[str]]:
    return {
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


# The API key and failed-task admins register themselves when imported.
from institutions import admin_failures, admin_keys  # noqa: E402, F401
