from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from flags import registry
from flags.models import Flag, Rollout
from flags.services.flags import (
    flag_delete,
    flag_delete_check,
    flag_kill,
    flag_revive,
    flag_save,
    flag_save_check,
)
from flags.services.rollouts import DEFAULT_STEPS, rollout_start
from institutions.admin_base import TenantAdmin


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)


class RolloutForm(forms.Form):
    steps = forms.JSONField(initial=DEFAULT_STEPS, help_text='e.g. ["test", 5, 25, "everyone"]')
    step_minutes = forms.IntegerField(min_value=1, initial=60)
    rule_group = forms.CharField(initial="rollout", max_length=80)


class FlagForm(forms.ModelForm):
    class Meta:
        model = Flag
        # The admin's `fields` add the named members (their choices need the environment).
        fields = ["name", "note", "everyone", "percent", "test_cohort", "staff"]

    def _post_clean(self):
        super()._post_clean()
        # What the save would refuse (a production rollout of this flag holds staging's
        # targeting) is said on the form, beside the edit, and nothing is saved.
        if self.instance.environment_id is None:
            return
        try:
            flag_save_check(environment=self.instance.environment, flag=self.instance)
        except ValidationError as error:
            self.add_error(None, error)


@admin.register(Flag)
class FlagAdmin(TenantAdmin):
    form = FlagForm
    change_roles = frozenset({"admin", "it", "marketing"})
    production_read_only = True  # production changes by release; the kill switch aside
    change_list_template = "admin/flags/flag/change_list.html"
    list_display = ["name", "targeting", "killed", "declared", "modified", "actions_links"]
    list_filter = ["killed", "test_cohort"]
    search_fields = ["name", "note"]
    filter_horizontal = ["members"]
    fields = [
        "name",
        "note",
        "everyone",
        "percent",
        "test_cohort",
        "staff",
        "members",
        "killed",
        "killed_at",
        "killed_reason",
    ]
    readonly_fields = ["killed", "killed_at", "killed_reason"]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        name = request.GET.get("name")
        if name and registry.is_declared(name):
            initial["note"] = registry.declared()[name].description
        return initial

    @admin.display(description="Targeting")
    def targeting(self, obj):
        if obj.killed:
            return "KILLED (off for everyone)"
        if obj.everyone is not None:
            return "everyone" if obj.everyone else "off for everyone"
        parts = []
        if obj.test_cohort:
            parts.append("test cohort")
        if obj.percent:
            parts.append(f"{obj.percent}% of members")
        if obj.staff:
            parts.append("staff")
        return ", ".join(parts) or "named members only"

    @admin.display(description="Declared in code", boolean=True)
    def declared(self, obj):
        return registry.is_declared(obj.name)

    @admin.display(description="")
    def actions_links(self, obj):
        view = "revive" if obj.killed else "kill"
        url = reverse(f"admin:flags_flag_{view}", args=[obj.pk])
        rollout = reverse("admin:flags_flag_rollout", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">{}</a> <a href="{}">guarded rollout</a>',
            url,
            "Revive" if obj.killed else "Kill switch",
            rollout,
        )

    def changelist_view(self, request, extra_context=None):
        environment = self._environment(request)
        rows = set()
        if environment is not None:
            rows = set(Flag.objects.filter(environment=environment).values_list("name", flat=True))
        declared = registry.declared()
        extra_context = {
            **(extra_context or {}),
            "missing_flags": [d for name, d in declared.items() if name not in rows],
            "stale_flags": sorted(rows - set(declared)),
            "dashboard_url": reverse("admin:flags_dashboard"),
        }
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        try:
            flag_save(
                environment=self._environment(request),
                flag=obj,
                actor=request.user,
                members=form.cleaned_data.get("members"),
            )
        except ValidationError as error:
            raise PermissionDenied(error.messages[0]) from error

    def save_related(self, request, form, formsets, change):
        # flag_save set the named members, inside its audit entry; form.save_m2m() would
        # set them again, unaudited.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST":
            flag = self._flag(request, object_id)
            if self.has_delete_permission(request, flag):
                try:
                    flag_delete_check(environment=self._environment(request), flag=flag)
                except ValidationError as error:
                    self.message_user(request, error.messages[0], messages.ERROR)
                    return redirect("admin:flags_flag_change", flag.pk)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        try:
            flag_delete(environment=self._environment(request), flag=obj, actor=request.user)
        except ValidationError as error:
            raise PermissionDenied(error.messages[0]) from error

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (self._delete_selected, name, description)
        return actions

    def _delete_selected(self, modeladmin, request, queryset):
        """Django's "delete selected", after the checks each flag's deletion makes: one flag
        that may not go (rolled out in production now) keeps them all, with the reason."""
        if request.POST.get("post"):  # the confirmed deletion, not the confirmation page
            environment = self._environment(request)
            refusals = []
            for flag in queryset:
                try:
                    flag_delete_check(environment=environment, flag=flag)
                except ValidationError as error:
                    refusals.append(f"{flag.name}: {error.messages[0]}")
            if refusals:
                self.message_user(request, "Nothing deleted. " + " ".join(refusals), messages.ERROR)
                return None
        return delete_selected(modeladmin, request, queryset)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="flags_dashboard"),
            path("<path:object_id>/kill/", wrap(self.kill_view), name="flags_flag_kill"),
            path("<path:object_id>/revive/", wrap(self.revive_view), name="flags_flag_revive"),
            path("<path:object_id>/rollout/", wrap(self.rollout_view), name="flags_flag_rollout"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        from flags.admin.dashboard import dashboard_view

        return dashboard_view(self, request)

    def _flag(self, request, object_id):
        self._ensure_visible(request, object_id)
        return self.get_object(request, object_id)

    def _reason_view(self, request, object_id, *, service, title, done):
        flag = self._flag(request, object_id)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                service(
                    environment=self._environment(request),
                    flag=flag,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except PermissionDenied as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, done.format(flag=flag.name), messages.WARNING)
            return redirect("admin:flags_flag_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": title.format(flag=flag.name),
            "form": form,
            "flag": flag,
            "opts": self.opts,
        }
        return render(request, "admin/flags/flag/reason_form.html", context)

    def kill_view(self, request, object_id):
        return self._reason_view(
            request,
            object_id,
            service=flag_kill,
            title="Kill switch: turn {flag} off for everyone now",
            done="{flag} is off for everyone, now.",
        )

    def revive_view(self, request, object_id):
        return self._reason_view(
            request,
            object_id,
            service=flag_revive,
            title="Revive {flag} (its targeting applies again)",
            done="{flag} was revived.",
        )

    def rollout_view(self, request, object_id):
        flag = self._flag(request, object_id)
        if not self._roles(request) & {"admin", "it"}:
            raise PermissionDenied("Admin or IT starts a guarded rollout.")
        form = RolloutForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                rollout_start(
                    environment=self._environment(request),
                    flag=flag,
                    actor=request.user,
                    **form.cleaned_data,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(request, f"Rollout of {flag.name} started.")
                return redirect("admin:flags_rollout_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Guarded rollout of {flag.name}",
            "form": form,
            "flag": flag,
            "opts": self.opts,
        }
        return render(request, "admin/flags/flag/reason_form.html", context)


@admin.register(Rollout)
class RolloutAdmin(TenantAdmin):
    list_display = ["flag", "status", "steps", "step_index", "step_started_at", "step_minutes"]
    list_filter = ["status"]
    readonly_fields = [
        "flag",
        "status",
        "steps",
        "step_index",
        "step_started_at",
        "step_minutes",
        "rule_group",
        "history",
        "created_by",
        "created_at",
        "finished_at",
    ]

    def has_add_permission(self, request):
        return False  # started from a flag (guarded rollout)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
