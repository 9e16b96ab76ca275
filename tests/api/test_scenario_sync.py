"""Scenario 7, end to end: the institution's systems sync.

The core banking system pushes 10,000 members with their homes and liens through the API
with a staging key (ten requests of 1,000), then with a production key on the production
host; a retried request with the same idempotency key changes nothing; a batch with bad
rows is refused with each bad row named.
"""

from __future__ import annotations

import pytest
from django.db.models import Max

from homes.models import Lien, Member, Property
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.api.helpers import api_client, member_row

MEMBERS = 10_000
BATCH = 1_000


def _batches() -> list[list[dict]]:
    rows = [member_row(n, prefix="CB") for n in range(MEMBERS)]
    return [rows[i : i + BATCH] for i in range(0, MEMBERS, BATCH)]


def _state(environment) -> tuple:
    with environment_scope(environment):
        members = Member.objects.filter(environment=environment)
        return (
            members.count(),
            Property.objects.filter(environment=environment).count(),
            Lien.objects.filter(environment=environment).count(),
            members.aggregate(Max("updated_at"))["updated_at__max"],
            AuditEntry.objects.filter(environment=environment).count(),
        )


def _push(client, batches, tag: str) -> list[dict]:
    answers = []
    for number, batch in enumerate(batches):
        response = client.post(
            "/api/v1/members/",
            {"members": batch},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"{tag}-{number}",
        )
        assert response.status_code == 200, response.content[:1000]
        answers.append(response.json())
    return answers


@pytest.mark.slow
@pytest.mark.django_db
def test_scenario_7__core_banking_syncs_10000_members_to_staging_then_production(tenant, settings):
    settings.API_THROTTLE_RATE = "100/min"
    batches = _batches()
    staging = api_client(tenant.staging, scopes=["members:write"])
    production = api_client(tenant.production, scopes=["members:write"])

    # Staging first, with a staging key on the staging host.
    answers = _push(staging, batches, "staging")
    assert sum(a["created"] for a in answers) == MEMBERS
    assert _state(tenant.staging)[:3] == (MEMBERS, MEMBERS, MEMBERS)
    assert _state(tenant.production)[:3] == (0, 0, 0)

    # The staging key is refused on the production host.
    wrong_host = api_client(tenant.production, raw_key=staging.raw_key)
    response = wrong_host.post("/api/v1/members/", {"members": batches[0]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert _state(tenant.production)[:3] == (0, 0, 0)

    # Then production, with a production key on the production host.
    answers = _push(production, batches, "production")
    assert sum(a["created"] for a in answers) == MEMBERS
    assert _state(tenant.production)[:3] == (MEMBERS, MEMBERS, MEMBERS)
    staging_after = _state(tenant.staging)
    with environment_scope(tenant.production):
        sample = Member.objects.get(external_id="CB004242")
        home = Property.objects.get(member=sample)
        lien = Lien.objects.get(property=home)
    assert (sample.email, home.external_id, lien.position) == (
        "cb4242@members.example",
        "CBH004242",
        1,
    )

    # A retried request with the same idempotency key changes nothing.
    before = _state(tenant.production)
    retry = production.post(
        "/api/v1/members/",
        {"members": batches[3]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="production-3",
    )
    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == answers[3]
    assert _state(tenant.production) == before
    assert _state(tenant.staging) == staging_after

    # A batch with bad rows is refused, each bad row named; nothing of it is saved.
    bad = [member_row(MEMBERS + n, prefix="CB") for n in range(BATCH)]
    bad[7]["email"] = "not-an-email"
    bad[512]["properties"][0]["liens"][0]["balance"] = -100
    bad[998]["properties"][0]["street"] = ""
    bad[999]["external_id"] = bad[0]["external_id"]
    response = production.post(
        "/api/v1/members/", {"members": bad}, format="json", HTTP_IDEMPOTENCY_KEY="production-bad"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "4 of 1000 rows are invalid; nothing was saved."
    assert {row["index"]: sorted(row["fields"]) for row in error["rows"]} == {
        7: ["email"],
        512: ["properties.0.liens.0.balance"],
        998: ["properties.0.street"],
        999: ["external_id"],
    }
    assert _state(tenant.production) == before
