"""Events in through the data plan; engagement metrics, delivery status and releases out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.utils import timezone

from flags.models import Event
from flags.services.plans import data_plan_version_create
from institutions.tenancy import environment_scope
from notifications.models import Delivery
from tests.api.helpers import api_client
from tests.factories import MemberFactory
from tests.flags.factories import EventFactory
from tests.notifications.factories import DeliveryFactory
from tests.releases.factories import release_factory, signoff_factory

PLAN = {
    "offer_viewed": {
        "description": "A member opened an offer.",
        "schema": {
            "type": "object",
            "properties": {"offer_id": {"type": "integer"}},
            "required": ["offer_id"],
        },
    }
}


@pytest.mark.django_db
def test_events__good_rows_stored_through_the_data_plan__bad_rows_named(tenant):
    env = tenant.production
    with environment_scope(env):
        data_plan_version_create(environment=env, points=PLAN, actor=None)
    tester = MemberFactory(environment=env, is_test=True, external_id="T1")
    real = MemberFactory(environment=env, external_id="R1")
    batch = [
        {"name": "offer_viewed", "member_external_id": "T1", "properties": {"offer_id": 3}},
        {"name": "offer_viewed", "member_id": real.pk, "properties": {"offer_id": "x"}},
        {"name": "Bad Name"},
        {"name": "offer_viewed", "member_external_id": "nobody"},
        {"name": "statement_downloaded", "member_external_id": "R1", "is_test": True},
    ]
    response = api_client(env).post("/api/v1/events/", {"events": batch}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["quarantined"], body["rejected"]) == (2, 1, 2)
    statuses = [(r["index"], r["status"], r["plan_status"]) for r in body["rows"]]
    assert statuses == [
        (0, "accepted", "planned"),
        (1, "quarantined", "invalid"),
        (2, "rejected", ""),
        (3, "rejected", ""),
        (4, "accepted", "unplanned"),
    ]
    assert body["rows"][3]["errors"] == ["member_external_id: no member 'nobody' here"]
    with environment_scope(env):
        stored = {e.name + str(e.member_id): e for e in Event.objects.filter(source="api")}
    # is_test comes from the member, never from the client.
    assert stored[f"offer_viewed{tester.pk}"].is_test is True
    assert stored[f"statement_downloaded{real.pk}"].is_test is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": {"name": "x"}}, "events"),
        ({"events": [{"name": "x"}], "source": "web"}, "events"),
        ({"events": [{"name": "x"}] * 1001}, "events"),
    ],
)
def test_events__batch_of_the_wrong_shape__is_refused(tenant, body, field):
    response = api_client(tenant.production).post("/api/v1/events/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_events__no_good_row__is_a_400_naming_each_and_nothing_is_stored(tenant):
    env = tenant.production
    batch = [
        {"name": "ok", "occurred_at": "2020-13-45T00:00:00Z"},
        {"name": "ok", "properties": "not an object"},
        {"name": "ok", "member_external_id": "a\u0000b"},
        {"name": "ok", "member_id": 10**30},
    ]
    response = api_client(env).post("/api/v1/events/", {"events": batch}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "No event of the batch is valid; nothing was stored."
    assert [r["index"] for r in error["rows"]] == [0, 1, 2, 3]
    assert error["rows"][0]["fields"] == {"occurred_at": ["an ISO 8601 time with a time zone"]}
    with environment_scope(env):
        assert not Event.objects.exists()


@pytest.mark.django_db
def test_engagement__counts_offers_and_the_funnel__test_cohort_left_out_unless_asked(tenant):
    env = tenant.production
    real = MemberFactory(environment=env)
    tester = MemberFactory(environment=env, is_test=True)
    for member in (real, tester):
        for name in ("dashboard_viewed", "offer_viewed", "offer_selected"):
            EventFactory(
                environment=env,
                member=member,
                is_test=member.is_test,
                name=name,
                properties={"offer_id": 7, "offer_kind": "heloc"},
            )
    client = api_client(env, scopes=["metrics:read"])
    body = client.get("/api/v1/metrics/engagement/").json()
    assert body["events"] == 3
    assert body["include_test"] is False
    (offer,) = body["offers"]
    assert (offer["offer_id"], offer["views"], offer["selections"], offer["rate"]) == (
        "7",
        1,
        1,
        1.0,
    )
    assert [s["members"] for s in body["funnel"]] == [1, 1, 0, 0]
    with_test = client.get("/api/v1/metrics/engagement/?include_test=true").json()
    assert with_test["events"] == 6
    start = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    response = client.get("/api/v1/metrics/engagement/", {"start": start})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"start": ["Must be before the end."]}


@pytest.mark.django_db
def test_deliveries__status_filtered_and_synced(tenant, other_tenant):
    env = tenant.production
    member = MemberFactory(environment=env, external_id="D1")
    sent = DeliveryFactory(environment=env, member=member, state=Delivery.State.SENT)
    dead = DeliveryFactory(environment=env, member=member, state=Delivery.State.DEAD)
    DeliveryFactory(environment=env)
    elsewhere = DeliveryFactory(environment=other_tenant.production)
    client = api_client(env, scopes=["metrics:read"])
    listed = client.get("/api/v1/deliveries/", {"member": "D1"}).json()["results"]
    assert [d["id"] for d in listed] == [sent.pk, dead.pk]
    assert listed[0]["member"] == "D1"
    assert "context" not in listed[0]
    dead_only = client.get("/api/v1/deliveries/", {"state": "dead"}).json()["results"]
    assert [d["id"] for d in dead_only] == [dead.pk]
    assert client.get(f"/api/v1/deliveries/{sent.pk}/").json()["state"] == "sent"
    assert client.get(f"/api/v1/deliveries/{elsewhere.pk}/").status_code == 404
    assert client.get(f"/api/v1/deliveries/{10**20}/").status_code == 404
    assert client.get("/api/v1/deliveries/", {"state": "lost"}).status_code == 400


@pytest.mark.django_db
def test_releases__staging_shows_all__production_those_deployed(tenant):
    now = timezone.now()
    deployed = release_factory(
        environment=tenant.staging, state="deployed", deployed_at=now, title="New colours"
    )
    pending = release_factory(environment=tenant.staging, title="Later")
    signoff_factory(environment=tenant.staging, release=deployed, role="it")
    staging = api_client(tenant.staging, scopes=["metrics:read"])
    production = api_client(tenant.production, scopes=["metrics:read"])
    numbers = [r["number"] for r in staging.get("/api/v1/releases/").json()["results"]]
    assert numbers == sorted([deployed.number, pending.number])
    (shown,) = production.get("/api/v1/releases/").json()["results"]
    assert (shown["number"], shown["title"], shown["state"]) == (
        deployed.number,
        "New colours",
        "deployed",
    )
    assert [(s["role"], s["decision"]) for s in shown["signoffs"]] == [("it", "approve")]
    assert production.get(f"/api/v1/releases/{pending.number}/").status_code == 404
    assert staging.get(f"/api/v1/releases/{pending.number}/").status_code == 200
    pending_only = staging.get("/api/v1/releases/", {"state": "pending"}).json()["results"]
    assert [r["number"] for r in pending_only] == [pending.number]


@pytest.mark.django_db
def test_events__a_time_with_any_offset__is_stored_in_utc(tenant):
    env = tenant.production
    odd = timezone.now().astimezone(timezone.get_fixed_timezone(22 * 60 + 53))
    response = api_client(env).post(
        "/api/v1/events/",
        {"events": [{"name": "statement_downloaded", "occurred_at": odd.isoformat()}]},
        format="json",
    )
    assert response.status_code == 200
    with environment_scope(env):
        stored = Event.objects.get(name="statement_downloaded")
    assert stored.occurred_at == odd
    assert stored.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "row",
    [
        {"name": "offer_viewed", "external_id": "R1"},  # for member_external_id
        {"name": "offer_viewed", "member": "R1"},
        {"name": "offer_viewed", "member_external_id": "R1", "occured_at": "2026-01-01"},
    ],
)
def test_events__a_row_with_a_misspelt_field__rejected_naming_it(tenant, row):
    """Fields an event row does not have were dropped: the event was stored without its
    member (counted in `events`, never in the funnel) or stamped with the time received,
    and answered "accepted". Like a row of members, valuations or sales, the row is refused
    with its error naming the field; the good rows of the batch are still stored."""
    env = tenant.production
    member = MemberFactory(environment=env, external_id="R1")
    client = api_client(env)
    response = client.post("/api/v1/events/", {"events": [row]}, format="json")
    assert response.status_code == 400, response.content[:400]
    (bad,) = response.json()["error"]["rows"]
    (misspelt,) = set(row) - {"name", "member_external_id"}
    assert bad["fields"][misspelt] == ["Unknown field."]
    with environment_scope(env):
        assert not Event.objects.exists()

    good = {"name": "offer_viewed", "member_external_id": "R1", "is_test": True}
    response = client.post("/api/v1/events/", {"events": [good, row]}, format="json")
    assert response.status_code == 200, response.content[:400]
    rows = response.json()["rows"]
    assert [r["status"] for r in rows] == ["accepted", "rejected"]
    assert rows[1]["errors"] == [f"{misspelt}: Unknown field."]
    with environment_scope(env):
        (stored,) = Event.objects.all()
    assert (stored.member_id, stored.is_test) == (member.pk, False)


@pytest.mark.django_db
def test_deliveries__a_misspelt_filter__refused_not_ignored(tenant):
    """`?status=failed` (the filter is `state`) answered every delivery, sent ones too: a
    warehouse job that meant the failed ones got all of them as if they had failed."""
    env = tenant.production
    DeliveryFactory(environment=env, state=Delivery.State.SENT)
    response = api_client(env).get("/api/v1/deliveries/", {"status": "failed"})
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["fields"] == {"status": ["Unknown parameter."]}


def _list_operations() -> dict[str, list[dict]]:
    """The query parameters of each GET operation that takes some, as openapi.yaml
    documents them."""
    schema = yaml.safe_load((Path(settings.BASE_DIR) / "openapi.yaml").read_text())
    operations = {
        path: [p for p in methods["get"].get("parameters", []) if p["in"] == "query"]
        for path, methods in schema["paths"].items()
        if "get" in methods
    }
    return {path: parameters for path, parameters in operations.items() if parameters}


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(_list_operations()))
def test_list_operations__every_documented_parameter_taken__an_unknown_one_refused(tenant, path):
    """Each list operation refuses a parameter it does not know, naming it, and takes every
    parameter the schema documents for it (and DRF's `format`)."""
    now = timezone.now()
    values = {
        "limit": "10",
        "updated_since": "2026-01-01T00:00:00Z",
        "start": (now - timedelta(days=1)).isoformat(),
        "end": now.isoformat(),
        "include_test": "true",
        "member": "M1",
        "campaign_key": "home_value",
    }
    query = {"format": "json"}
    for parameter in _list_operations()[path]:
        name, schema = parameter["name"], parameter["schema"]
        if name == "cursor":
            continue  # only a cursor the API gave is taken (paging: test_members.py)
        query[name] = schema["enum"][0] if "enum" in schema else values[name]
    client = api_client(tenant.staging)
    response = client.get(path, query)
    assert response.status_code == 200, (query, response.content[:300])
    response = client.get(path, {**query, "sort": "id", "limt": "5"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "limt": ["Unknown parameter."],
        "sort": ["Unknown parameter."],
    }
