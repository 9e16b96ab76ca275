from django.core.management.base import CommandError

from institutions.tenancy import TenantCommand
from releases.services import ReleaseRefused
from releases.staging_data.mock import REGIONS, mock_members_generate
from releases.staging_data.progress import ProgressBar


class Command(TenantCommand):
    help = "Generate mock staging members for a region, reproducible from a seed."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--region", choices=sorted(REGIONS), default="king-county-wa")

    def handle_tenant(self, environment, *args, **options):
        try:
            made = mock_members_generate(
                environment=environment,
                count=options["count"],
                seed=options["seed"],
                region=options["region"],
                progress=ProgressBar(self.stdout, "members"),
            )
        except ReleaseRefused as refusal:
            raise CommandError(refusal.message) from None
        self.stdout.write(f"{made} mock members for {REGIONS[options['region']].name}.")
