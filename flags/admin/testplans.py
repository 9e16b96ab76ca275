from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from flags.models import TestPlan, TestPlanRun
from flags.services.testplans import run_test_plan
from institutions.admin_base import TenantAdmin


class TestPlanForm(forms.ModelForm):
    class Meta:
        model = TestPlan
        fields = [
            "name",
            "description",
            "requests",
            "mutation",
            "attack_sets",
            "max_requests",
            "seed",
            "rule_group",
        ]

    # An optional JSON box left empty arrives as None, which the column cannot hold: it
    # means "none". The shape of what was typed is checked by TestPlan.clean().
    def clean_mutation(self):
        value = self.cleaned_data["mutation"]
        return {} if value is None else value

    def clean_attack_sets(self):
        value = self.cleaned_data["attack_sets"]
        return {} if value is None else value

    def clean_requests(self):
        requests = self.cleaned_data["requests"]
        if not isinstance(requests, list) or not all(
            isinstance(r, dict) and str(r.get("path", "")).startswith("/") for r in requests
        ):
            raise forms.ValidationError('Give a list of {"method", "path": "/...", ...}.')
        return requests

    def clean_max_requests(self):
        value = self.cleaned_data["max_requests"]
        if value > 1000:
            raise forms.ValidationError("At most 1,000 requests per run.")
        return value


@admin.register(TestPlan)
class TestPlanAdmin(TenantAdmin):
    form = TestPlanForm
    change_roles = frozenset({"admin", "it"})
    production_read_only = True
    list_display = ["name", "description", "max_requests", "rule_group", "last_verdict"]
    actions = ["run_plan"]

    def get_queryset(self, request):
        # Each plan's newest run for the "Last verdict" column, in one query for the page.
        newest = TestPlanRun.objects.order_by("-started_at").only(
            "plan", "status", "verdict", "started_at"
        )[:1]
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("runs", queryset=newest, to_attr="newest_runs"))
        )

    @admin.display(description="Last verdict")
    def last_verdict(self, obj):
        run = next(iter(obj.newest_runs), None)
        return f"{run.verdict or run.status} ({run.started_at:%Y-%m-%d %H:%M})" if run else "—"

    @admin.action(description="Run the test plan now (as a test member) and judge it")
    def run_plan(self, request, queryset):
        if not self._roles(request) & {"admin", "it"}:
            self.message_user(request, "Admin or IT runs test plans.", messages.ERROR)
            return
        for plan in queryset[:3]:
            try:
                run = run_test_plan(
                    environment=self._environment(request), plan=plan, actor=request.user
                )
            except ValidationError as error:
                self.message_user(request, f"{plan}: {error.messages[0]}", messages.ERROR)
                continue
            url = reverse("admin:flags_testplanrun_change", args=[run.pk])
            level = messages.SUCCESS if run.verdict == "pass" else messages.WARNING
            self.message_user(
                request,
                format_html(
                    '{}: {} after {} requests — <a href="{}">details</a>',
                    plan,
                    (run.verdict or run.status).upper(),
                    run.requests_sent,
                    url,
                ),
                level,
            )


@admin.register(TestPlanRun)
class TestPlanRunAdmin(TenantAdmin):
    list_display = ["plan", "started_at", "verdict", "requests_sent", "mutated", "status_counts"]
    list_filter = ["verdict", "plan"]
    readonly_fields = [
        "plan",
        "status",
        "target",
        "started_at",
        "finished_at",
        "requests_sent",
        "mutated",
        "status_counts",
        "verdict",
        "oracle",
        "server_errors",
        "error",
        "actor",
    ]
    exclude = ["results"]

    @admin.display(description="Oracle")
    def oracle(self, obj):
        return format_html(
            "<table><tr><th>Metric</th><th>Cohort</th><th>Value</th><th>Sample</th>"
            "<th>Pass below / fail at</th><th>Min sample</th><th>Verdict</th><th>Detail</th></tr>"
            "{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td>"
                "<td><strong>{}</strong></td><td>{}</td></tr>",
                (
                    (
                        r["metric"],
                        r["cohort"],
                        r["value"],
                        r["sample"],
                        r["pass_threshold"],
                        r["fail_threshold"],
                        r["min_sample"],
                        r["verdict"],
                        r["detail"],
                    )
                    for r in obj.results or []
                ),
            ),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
