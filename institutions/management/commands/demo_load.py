from django.conf import settings
from django.core.management.base import BaseCommand

from institutions.demo import demo_load


class Command(BaseCommand):
    help = "Load two demo institutions (staging and production each) and print URLs and logins."

    def handle(self, *args, **options):
        report = demo_load()
        port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
        self.stdout.write(f"Admin: {settings.PUBLIC_SCHEME}://{settings.BASE_DOMAIN}{port}/admin/")
        self.stdout.write(
            "Staff sign in with a second factor: `python manage.py staff_totp USERNAME` prints "
            "the current code (and the otpauth:// URI to add to an authenticator app)."
        )
        for line in report.lines:
            self.stdout.write(line)
