"""Demo data: declared flags (the dashboard widget on for the test cohort), a data plan,
oracle rules, the default test plan, and a webhook destination that is off by default."""

from __future__ import annotations

from flags import registry
from flags.defaults import default_rules, default_test_plan, demo_plan_points
from flags.models import DataPlanVersion, Destination, Flag, OracleRule, TestPlan
from flags.services.plans import data_plan_version_create
from institutions.demo import DemoReport, register_demo_step
from institutions.tenancy import environment_scope


def demo_flags(institution, report: DemoReport) -> None:
    for environment in institution.environments.all():
        with environment_scope(environment):
            for name, declared in registry.declared().items():
                Flag.objects.get_or_create(
                    environment=environment,
                    name=name,
                    defaults={
                        "note": declared.description,
                        "test_cohort": name == registry.DASHBOARD_EQUITY_WIDGET,
                        "everyone": None,
                    },
                )
            if not DataPlanVersion.objects.exists():
                data_plan_version_create(
                    environment=environment,
                    points=demo_plan_points(),
                    actor=None,
                    description="Engagement events of the member pages",
                )
            for group, rules in default_rules().items():
                for spec in rules:
                    OracleRule.objects.get_or_create(
                        environment=environment,
                        group=group,
                        name=spec.name,
                        defaults={
                            "metric": spec.metric,
                            "comparator": spec.comparator,
                            "pass_threshold": spec.pass_threshold,
                            "fail_threshold": spec.fail_threshold,
                            "min_sample": spec.min_sample,
                            "window_minutes": spec.window_minutes,
                            "cohort": spec.cohort,
                        },
                    )
            if not TestPlan.objects.filter(name="default").exists():
                TestPlan.objects.create(environment=environment, **default_test_plan())
            Destination.objects.get_or_create(
                environment=environment,
                name="analytics webhook",
                defaults={
                    "kind": Destination.Kind.WEBHOOK,
                    "enabled": False,
                    "url": f"https://analytics.{institution.slug}.example/chimney-events",
                    "secret": "demo-signing-secret-change-me",
                },
            )
    report.add(
        f"  flags: {', '.join(registry.declared())} "
        f"({registry.DASHBOARD_EQUITY_WIDGET} on for the test cohort); data plan v1; "
        "webhook destination disabled; run "
        f"`manage.py flags_test_plan --institution {institution.slug} --environment staging`"
    )


register_demo_step(demo_flags, order=60)
