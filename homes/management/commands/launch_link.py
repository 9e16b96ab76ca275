from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError
from django.urls import reverse

from homes.models import Member
from homes.services import launch_link_build
from institutions.tenancy import TenantCommand


class Command(TenantCommand):
    help = (
        "Print a signed digital-banking launch URL for a member (as the institution's online "
        "banking would build it), e.g. to try the tile or test an integration."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--external-id", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--minutes", type=int, default=5)
        parser.add_argument(
            "--tile",
            action="store_true",
            help="print the tile's address for digital banking's frame (/tile/?token=...)",
        )

    def handle_tenant(self, environment, *args, **options):
        if not 1 <= options["minutes"] <= 5:
            raise CommandError("--minutes must be between 1 and 5 (launch links are short-lived).")
        member = Member.objects.filter(external_id=options["external_id"]).first()
        token = launch_link_build(
            environment=environment,
            external_id=options["external_id"],
            email=options["email"] or (member.email if member else ""),
            first_name=member.first_name if member else "",
            last_name=member.last_name if member else "",
            ttl=timedelta(minutes=options["minutes"]),
        )
        path = reverse(
            "homes:tile" if options["tile"] else "homes:launch", urlconf=settings.TENANT_URLCONF
        )
        self.stdout.write(f"{environment.base_url}{path}?token={token}")
