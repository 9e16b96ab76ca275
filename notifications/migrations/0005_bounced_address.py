"""A bounce mark names the address that bounced, so a corrected address receives email again.

Marks made before this knew no address: they take the member's address of today (the one
they have been blocking), so nothing that was stopped starts again by this migration.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower


def fill(apps, schema_editor):
    NotificationProfile = apps.get_model("notifications", "NotificationProfile")
    Member = apps.get_model("homes", "Member")
    NotificationProfile.objects.filter(email_bounced_at__isnull=False).update(
        email_bounced_address=Subquery(
            Member.objects.filter(pk=OuterRef("member_id"))
            .annotate(address=Lower("email"))
            .values("address")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_consent_method_provider_feedback"),
    ]

    operations = [
        migrations.AddField(
            model_name="notificationprofile",
            name="email_bounced_address",
            field=models.EmailField(
                blank=True,
                help_text="The address that bounced (lower case): email is stopped only while "
                "the member's address is still this one.",
                max_length=254,
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
