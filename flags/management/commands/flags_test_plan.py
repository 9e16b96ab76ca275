"""Run a test plan against an environment and print the oracle's verdict."""

from django.core.management.base import CommandError

from flags.models import TestPlan
from flags.services.testplans import run_test_plan
from institutions.tenancy import TenantCommand


class Command(TenantCommand):
    help = "Send a test plan's requests as a test member, then print the oracle's verdict."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--plan", default="default")
        parser.add_argument(
            "--address", help="Loopback host:port to send to (default: the environment's URL)."
        )
        parser.add_argument("--settle", type=float, default=None, help="Seconds to wait.")

    # The first parameter is not called `environment`: TenantCommand also passes the
    # --environment option (the kind) as a keyword.
    def handle_tenant(self, environment, *args, **options):
        plan = TestPlan.objects.filter(environment=environment, name=options["plan"]).first()
        if plan is None:
            raise CommandError(f"No test plan {options['plan']!r} in {environment}.")
        try:
            run = run_test_plan(
                environment=environment,
                plan=plan,
                address=options["address"],
                settle_seconds=options["settle"],
            )
        except Exception as exc:
            raise CommandError(str(exc)) from exc
        if run.error:
            raise CommandError(run.error)
        self.stdout.write(
            f"{plan.name}: {run.requests_sent} requests ({run.mutated} mutated) to {run.target}"
        )
        self.stdout.write(f"statuses: {run.status_counts}")
        for result in run.results:
            self.stdout.write(
                f"  {result['verdict']:<12} {result['metric']} [{result['cohort']}] "
                f"{result['detail']}"
            )
        self.stdout.write(f"VERDICT: {run.verdict.upper()}")
        if run.verdict == "fail":
            raise CommandError("The oracle failed the test plan.")
