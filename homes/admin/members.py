from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from homes.models import Member
from homes.services import LoginError, member_create, member_update, member_visit_link_build
from institutions.admin_base import TenantAdmin


@admin.register(Member)
class MemberAdmin(TenantAdmin):
    change_roles = frozenset({"admin", "it"})
    list_display = ["__str__", "email", "external_id", "is_test", "enrollment", "last_login_at"]
    list_filter = ["is_test", "enrollment"]
    search_fields = ["email", "first_name", "last_name", "external_id"]
    readonly_fields = ["created_at", "updated_at", "last_login_at", "opted_out_at", "visit_link"]
    fields = [
        "email",
        "first_name",
        "last_name",
        "external_id",
        "is_test",
        "enrollment",
        "opted_out_at",
        "created_at",
        "updated_at",
        "last_login_at",
        "visit_link",
    ]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/visit/",
                self.admin_site.admin_view(self.visit_view),
                name="homes_member_visit",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Member pages")
    def visit_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        if obj.environment.is_production and not obj.is_test:
            return "Only test members can be visited in production."
        url = reverse("admin:homes_member_visit", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Visit the member pages as this member</a>', url
        )

    def visit_view(self, request, object_id):
        """Open the member pages as this member (staging: any; production: test members)."""
        self._ensure_visible(request, object_id)
        member = self.get_object(request, object_id)
        try:
            url = member_visit_link_build(
                environment=self._environment(request), member=member, actor=request.user
            )
        except LoginError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect(reverse("admin:homes_member_change", args=[member.pk]))
        return redirect(url)

    def save_model(self, request, obj, form, change):
        environment = self._environment(request)
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            member_update(environment=environment, member=obj, actor=request.user, **fields)
        else:
            created = member_create(environment=environment, actor=request.user, **fields)
            obj.pk = created.pk
