from django.core.management.base import CommandError

from institutions.tenancy import TenantCommand
from releases.services import ReleaseRefused
from releases.staging_data.anonymize import staging_refresh_from_production
from releases.staging_data.progress import ProgressBar


class Command(TenantCommand):
    help = (
        "Replace staging's members and homes with an anonymized copy of production's "
        "(run with --environment staging; staging's configuration is left as it is)."
    )

    def handle_tenant(self, environment, *args, **options):
        bar = ProgressBar(self.stdout)
        try:
            result = staging_refresh_from_production(
                environment=environment, actor=None, progress=bar
            )
        except ReleaseRefused as refusal:
            raise CommandError(refusal.message) from None
        finally:
            bar.close()
        self.stdout.write(f"Staging refreshed from production, anonymized: {result.summary()}.")
        for label, fields in result.not_copied_fields.items():
            self.stdout.write(f"  not copied (no anonymization rule): {label} {', '.join(fields)}")
        for label, n in result.skipped.items():
            self.stdout.write(
                f"  skipped: {n:,} {label} rows (what they refer to is not in staging)"
            )
