"""The audit trail's entries for secrets: a changed secret is named, never shown."""

import pytest
from django.urls import reverse

from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import staff_user
from tests.flags.factories import DestinationFactory


def _entries(object_type, object_id):
    return list(
        AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("id")
    )


@pytest.mark.django_db
def test_audited_save__secret_changed__entry_says_so_redacted__kept_secret_not_named(tenant):
    """Snapshots redact a secret to the same text before and after, so a diff of them
    would leave a rotated signing secret out of the entry."""
    environment = tenant.production  # where the secret is the one field staff may change
    destination = DestinationFactory(environment=environment, secret="the old secret")
    client = staff_client(staff_user(tenant.institution, "it"), environment)
    url = reverse("admin:flags_destination_change", args=[destination.pk])

    response = client.post(url, {"secret": "the new secret"})

    assert response.status_code == 302
    with environment_scope(environment):
        destination.refresh_from_db()
    assert destination.secret == "the new secret"
    rotated = _entries("flags.Destination", destination.pk)[-1]
    assert rotated.action == AuditEntry.Action.UPDATE
    assert rotated.changes["secret"] == {"before": "[redacted]", "after": "[redacted]"}
    assert "the new secret" not in str(rotated.changes)
    assert "the old secret" not in str(rotated.changes)

    response = client.post(url, {"secret": ""})  # left empty: the secret is kept

    assert response.status_code == 302
    kept = _entries("flags.Destination", destination.pk)[-1]
    assert kept.pk != rotated.pk
    assert "secret" not in kept.changes
