"""Failed background tasks in the admin: read-only; platform operators clear handled ones."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator

from institutions.admin_base import NotFoundInsteadOfRedirectMixin
from institutions.models import TaskFailure
from institutions.selectors import staff_roles
from institutions.services.task_failures import task_failures_delete

#: Institution staff who see their environment's failed tasks (technical detail: IT, admins).
FAILURE_ROLES = frozenset({"admin", "it"})


@admin.register(TaskFailure)
class TaskFailureAdmin(NotFoundInsteadOfRedirectMixin, admin.ModelAdmin):
    """Platform operators see every entry, the platform's own tasks' too; institution staff
    see those of the environment they selected, like every tenant page (any other answers
    404). Nobody adds or edits an entry; operators delete the ones they have handled."""

    list_display = ["at", "task_name", "environment", "exception_type", "short_message", "retries"]
    list_filter = ["task_name", ("environment", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["message"]
    date_hierarchy = "at"
    list_select_related = ["environment__institution"]
    fields = [
        "at",
        "task_name",
        "task_id",
        "environment",
        "exception_type",
        "message",
        "retries",
        "arguments",
        "traceback_text",
    ]
    readonly_fields = fields

    def _environment(self, request):
        return getattr(request, "admin_environment", None)

    def _staff_may_see(self, request) -> bool:
        environment = self._environment(request)
        if environment is None:
            return False
        return bool(staff_roles(request.user, environment.institution) & FAILURE_ROLES)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        if not self._staff_may_see(request):
            return queryset.none()
        return queryset.filter(environment=self._environment(request))

    def has_module_permission(self, request):
        return request.user.is_superuser or self._staff_may_see(request)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.display(description="Message")
    def short_message(self, obj):
        return Truncator(obj.message).chars(120)

    @admin.display(description="Traceback")
    def traceback_text(self, obj):
        return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else "—"

    def delete_model(self, request, obj):
        task_failures_delete(failures=[obj], actor=request.user)

    def delete_queryset(self, request, queryset):
        task_failures_delete(
            failures=queryset.select_related("environment__institution"), actor=request.user
        )
