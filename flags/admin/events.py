from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from flags import plans
from flags.models import (
    AnalyticsConsent,
    AnalyticsSummary,
    DataPlanVersion,
    Destination,
    DestinationBatch,
    Event,
    OracleRule,
    RequestMetric,
)
from flags.services.destinations import destination_reenable
from flags.services.plans import data_plan_version_save
from institutions.admin_base import TenantAdmin
from institutions.services import tenant_object_save


class ViewOnlyTenantAdmin(TenantAdmin):
    """Recorded data: staff look and filter; nothing is edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ViewOnlyTenantAdmin):
    list_display = [
        "id",
        "name",
        "member",
        "is_test",
        "source",
        "plan_status",
        "disposition",
        "occurred_at",
    ]
    list_filter = ["name", "is_test", "source", "plan_status", "disposition", "plan_version"]
    search_fields = ["name"]
    date_hierarchy = "occurred_at"
    list_select_related = ["member"]
    show_full_result_count = False


class DataPlanForm(forms.ModelForm):
    class Meta:
        model = DataPlanVersion
        fields = ["description", "points", "unplanned", "invalid"]

    def clean_points(self):
        points = self.cleaned_data["points"]
        errors = plans.schema_errors(points)
        if errors:
            raise forms.ValidationError([f"{name}: {msg}" for name, msg in errors.items()])
        return points


@admin.register(DataPlanVersion)
class DataPlanVersionAdmin(TenantAdmin):
    form = DataPlanForm
    change_roles = frozenset({"admin", "it", "marketing"})
    production_read_only = True  # plan versions reach production by release
    list_display = [
        "version",
        "description",
        "events_named",
        "unplanned",
        "invalid",
        "violations",
        "created_at",
    ]
    readonly_fields = ["version", "violations"]

    @admin.display(description="Events")
    def events_named(self, obj):
        return len(obj.points or {})

    @admin.display(description="Events recorded under it: planned / unplanned / invalid")
    def violations(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        counts = dict(
            Event.objects.filter(environment=obj.environment, plan_version=obj.version)
            .values_list("plan_status")
            .annotate(n=Count("id"))
        )
        return " / ".join(str(counts.get(s, 0)) for s in ("planned", "unplanned", "invalid"))

    def save_model(self, request, obj, form, change):
        data_plan_version_save(environment=self._environment(request), plan=obj, actor=request.user)


@admin.register(AnalyticsConsent)
class AnalyticsConsentAdmin(ViewOnlyTenantAdmin):
    list_display = ["member", "granted", "source", "updated_at"]
    list_filter = ["granted"]
    readonly_fields = ["member", "granted", "source", "text_shown", "updated_at"]


def _empty_as(value, empty):
    return empty if value is None else value


class DestinationForm(forms.ModelForm):
    url = forms.URLField(required=False, assume_scheme="https", help_text="Webhook endpoint.")
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret.",
    )

    class Meta:
        model = Destination
        fields = [
            "name",
            "kind",
            "enabled",
            "url",
            "secret",
            "timeout_seconds",
            "exclude_test_members",
            "allow_events",
            "deny_events",
            "rules",
            "require_consent",
        ]

    def clean_secret(self):
        return self.cleaned_data["secret"] or (self.instance.secret if self.instance.pk else "")

    # An optional JSON box left empty arrives as None, which the column cannot hold: it
    # means "no list". The shape of what was typed is checked by Destination.clean().
    def clean_allow_events(self):
        return _empty_as(self.cleaned_data["allow_events"], [])

    def clean_deny_events(self):
        return _empty_as(self.cleaned_data["deny_events"], [])

    def clean_rules(self):
        return _empty_as(self.cleaned_data["rules"], [])

    def clean(self):
        data = super().clean()
        if data.get("kind") == Destination.Kind.WEBHOOK and data.get("enabled"):
            if not data.get("url"):
                self.add_error("url", "A webhook needs a URL.")
            if not data.get("secret"):
                self.add_error("secret", "A webhook needs a signing secret.")
        return data


@admin.register(Destination)
class DestinationAdmin(TenantAdmin):
    form = DestinationForm
    change_roles = frozenset({"admin", "it"})
    list_display = [
        "name",
        "kind",
        "enabled",
        "state",
        "consecutive_failures",
        "last_success_at",
        "pending",
        "dead",
    ]
    list_filter = ["kind", "state", "enabled"]
    readonly_fields = ["state", "cursor", "consecutive_failures", "last_error", "last_success_at"]
    actions = ["reenable"]

    def get_fields(self, request, obj=None):
        fields = [*self.form.Meta.fields, *self.readonly_fields]
        if not self.has_change_permission(request, obj):
            # A page that may only be looked at shows every field's stored value: the
            # signing secret (which lets anyone sign requests to the endpoint) is left out.
            fields = ["signing_secret" if name == "secret" else name for name in fields]
        return fields

    @admin.display(description="Signing secret")
    def signing_secret(self, obj):
        return "Set" if obj is not None and obj.secret else "Not set"

    def _in_production(self, request) -> bool:
        environment = self._environment(request)
        return environment is not None and environment.is_production

    # Destinations come to production by release, like the rest of the configuration; the
    # signing secret is not promoted, so production sets its own here, and nothing else.
    def get_readonly_fields(self, request, obj=None):
        if self._in_production(request):
            promoted = [name for name in self.form.Meta.fields if name != "secret"]
            return [*promoted, *self.readonly_fields]
        return self.readonly_fields

    def has_add_permission(self, request):
        return not self._in_production(request) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return not self._in_production(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        # The batch counts of the list columns, in the list's own query (not two per row).
        return (
            super()
            .get_queryset(request)
            .annotate(
                pending_batches=Count(
                    "batches",
                    filter=Q(
                        batches__status__in=[
                            DestinationBatch.Status.PENDING,
                            DestinationBatch.Status.SENDING,
                        ]
                    ),
                ),
                dead_batches=Count(
                    "batches", filter=Q(batches__status=DestinationBatch.Status.DEAD)
                ),
            )
        )

    @admin.display(description="Pending batches", ordering="pending_batches")
    def pending(self, obj):
        return obj.pending_batches

    @admin.display(description="Dead letters", ordering="dead_batches")
    def dead(self, obj):
        return obj.dead_batches

    def has_reenable_permission(self, request):
        """Whoever may edit destinations here; the service keeps production's `enabled`."""
        return self.has_change_permission(request)

    @admin.action(description="Re-enable and retry dead-lettered batches", permissions=["reenable"])
    def reenable(self, request, queryset):
        for destination in queryset:
            try:
                n = destination_reenable(
                    environment=self._environment(request),
                    destination=destination,
                    actor=request.user,
                )
            except ValidationError as error:
                self.message_user(request, f"{destination}: {error.messages[0]}", messages.ERROR)
            else:
                self.message_user(request, f"{destination}: re-enabled, {n} batches requeued.")

    def save_model(self, request, obj, form, change):
        tenant_object_save(environment=self._environment(request), obj=obj, actor=request.user)


@admin.register(DestinationBatch)
class DestinationBatchAdmin(ViewOnlyTenantAdmin):
    list_display = [
        "id",
        "destination",
        "status",
        "event_count",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
    ]
    list_filter = ["status", "destination"]
    exclude = ["payload"]


@admin.register(AnalyticsSummary)
class AnalyticsSummaryAdmin(ViewOnlyTenantAdmin):
    list_display = ["day", "destination", "event_name", "dimension", "events", "members"]
    list_filter = ["destination", "event_name", "day"]


@admin.register(RequestMetric)
class RequestMetricAdmin(ViewOnlyTenantAdmin):
    list_display = ["minute", "cohort", "count", "errors", "latency_ms_sum"]
    list_filter = ["cohort"]


class OracleRuleForm(forms.ModelForm):
    class Meta:
        model = OracleRule
        fields = [
            "group",
            "name",
            "metric",
            "comparator",
            "pass_threshold",
            "fail_threshold",
            "min_sample",
            "window_minutes",
            "cohort",
        ]

    def __init__(self, *args, **kwargs):
        from institutions.metrics import metric_names

        super().__init__(*args, **kwargs)
        if "metric" in self.fields:  # not where the rule is read-only (production, roles)
            self.fields["metric"].help_text = "One of: " + ", ".join(metric_names())


@admin.register(OracleRule)
class OracleRuleAdmin(TenantAdmin):
    form = OracleRuleForm
    change_roles = frozenset({"admin", "it"})
    production_read_only = True
    list_display = [
        "group",
        "name",
        "metric",
        "comparator",
        "pass_threshold",
        "fail_threshold",
        "min_sample",
        "window_minutes",
        "cohort",
    ]
    list_filter = ["group", "metric"]
