"""Base admin for tenant-owned models: role-based access in the selected environment.

Staff edit one environment at a time (the switch in the header). Objects of any other
environment answer 404, like any other cross-tenant access. Every save and delete goes
through the audited services.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404
from django_scopes import scopes_disabled

from institutions.selectors import staff_roles
from institutions.services import tenant_object_delete, tenant_object_save

ALL_ROLES = frozenset({"admin", "it", "marketing", "lending"})


class NotFoundInsteadOfRedirectMixin:
    """Another tenant's object answers 404 on every object page, before any permission check.

    Django's admin redirects to the index for a missing object, and checks permissions
    first (a 403 would tell that the object exists); tenants need a plain 404.
    """

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"No {opts.verbose_name} with this id here.")

    def _ensure_visible(self, request, object_id):
        if object_id is not None and self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with this id here.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


def in_environment(form_class, environment=None):
    """The form's instance belongs to the environment before it is validated, and the
    constraints that include the environment are checked.

    The environment is not a field of the form, and Django leaves every field the form
    lacks out of its uniqueness checks: a second row with a name taken in this
    environment would pass the form and fail in the database (a server error). Here the
    instance carries its environment (`environment`, for a new row) and the form shows
    the error instead.
    """

    class InEnvironment(form_class):
        def __init__(self, *args, **form_kwargs):
            super().__init__(*args, **form_kwargs)
            if environment is not None and self.instance.environment_id is None:
                self.instance.environment = environment

        def _get_validation_exclusions(self):
            return super()._get_validation_exclusions() - {"environment"}

        def _post_clean(self):
            with scopes_disabled():  # the queries filter by the instance's environment
                super()._post_clean()

    InEnvironment.__name__ = form_class.__name__
    return InEnvironment


class TenantAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    """Admin for a TenantModel: scoped to the selected environment, permissions by role."""

    view_roles: frozenset[str] = ALL_ROLES
    change_roles: frozenset[str] = frozenset({"admin"})
    #: Configuration promoted by release is edited in staging only (production is read-only).
    production_read_only = False

    def _environment(self, request):
        return getattr(request, "admin_environment", None)

    def _roles(self, request) -> frozenset[str]:
        environment = self._environment(request)
        if environment is None:
            return frozenset()
        return staff_roles(request.user, environment.institution)

    def has_module_permission(self, request):
        return bool(self._roles(request) & self.view_roles)

    def has_view_permission(self, request, obj=None):
        return bool(self._roles(request) & (self.view_roles | self.change_roles))

    def _can_change(self, request) -> bool:
        environment = self._environment(request)
        if environment is None:
            return False
        if self.production_read_only and environment.is_production:
            return False
        return bool(self._roles(request) & self.change_roles)

    def has_add_permission(self, request):
        return self._can_change(request)

    def has_change_permission(self, request, obj=None):
        return self._can_change(request)

    def has_delete_permission(self, request, obj=None):
        return self._can_change(request)

    def get_exclude(self, request, obj=None):
        return (*(super().get_exclude(request, obj) or ()), "environment")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return in_environment(form, self._environment(request))

    def save_model(self, request, obj, form, change):
        tenant_object_save(environment=self._environment(request), obj=obj, actor=request.user)

    def delete_model(self, request, obj):
        tenant_object_delete(environment=self._environment(request), obj=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin that shows and filters but never changes (audit trails, logs)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
