from django.core.management.base import CommandError

from institutions.tenancy import TenantCommand
from releases.services import ReleaseRefused
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.progress import ProgressBar


class Command(TenantCommand):
    help = "Replace staging's members with an anonymized copy of production's."

    def handle_tenant(self, environment, *args, **options):
        try:
            copied = staging_refresh_from_production(
                environment=environment, actor=None, progress=ProgressBar(self.stdout, "members")
            )
        except ReleaseRefused as refusal:
            raise CommandError(refusal.message) from None
        self.stdout.write(f"Staging refreshed: {copied} members copied anonymized.")
