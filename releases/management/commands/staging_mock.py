import datetime as dt

from django.core.management.base import CommandError

from institutions.tenancy import TenantCommand
from releases.services import ReleaseRefused
from releases.staging_data.mock import mock_data_generate
from releases.staging_data.progress import ProgressBar
from releases.staging_data.regions import REGIONS


class Command(TenantCommand):
    help = (
        "Replace staging's members with mock members of a region: homes, liens, value history, "
        "recorded sales, equity and offers. The same seed (and --as-of day) gives the same data."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--count", type=int, default=1000, help="Members (default 1000).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--region", choices=sorted(REGIONS), default="king-county-wa")
        parser.add_argument(
            "--sales", type=int, default=None, help="Recorded sales (default: all the region's)."
        )
        parser.add_argument("--history-months", type=int, default=12)
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            default=None,
            help="The day the data is made as of (default today), YYYY-MM-DD.",
        )

    def handle_tenant(self, environment, *args, **options):
        bar = ProgressBar(self.stdout)
        try:
            result = mock_data_generate(
                environment=environment,
                count=options["count"],
                seed=options["seed"],
                region=options["region"],
                sales=options["sales"],
                history_months=options["history_months"],
                today=options["as_of"],
                progress=bar,
            )
        except ReleaseRefused as refusal:
            raise CommandError(refusal.message) from None
        finally:
            bar.close()
        self.stdout.write(f"Mock data for {REGIONS[result.region].name}: {result.summary()}.")
