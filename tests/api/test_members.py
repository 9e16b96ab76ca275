"""Members with their homes and liens through the API: upsert, read, incremental sync, erase;
vendor values and recorded sales; the offers matched for a member."""

from __future__ import annotations

import base64
import datetime
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flags.models import Event
from homes.finance.rounding import cents
from homes.models import Appointment, Lien, Member, Property, Sale, VendorValue
from homes.services.members import member_update
from homes.services.recompute import properties_recompute
from homes.services.store import COPY_MIN_ROWS
from homes.services.sync import REFRESH_GRACE
from homes.tasks import equity_tick, properties_sync
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from notifications.models import Delivery, PushSubscription
from tests.api.helpers import api_client, member_row
from tests.factories import MemberFactory
from tests.flags.factories import EventFactory
from tests.homes.factories import (
    AppointmentFactory,
    MemberOfferFactory,
    OfferMatchFactory,
    home_settings_factory,
    institution_today,
    years_after,
)
from tests.notifications.factories import DeliveryFactory, PushSubscriptionFactory


def _post_members(client, rows, key):
    return client.post(
        "/api/v1/members/", {"members": rows}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def _upsert(client, rows, **kwargs):
    response = client.post("/api/v1/members/", {"members": rows}, format="json", **kwargs)
    assert response.status_code == 200, response.content[:2000]
    return response.json()


def _audit_text(environment) -> str:
    """What the environment's audit trail says, as one text to search."""
    entries = AuditEntry.objects.filter(environment=environment)
    return str(list(entries.values_list("changes", "object_repr")))


def _member(environment, external_id) -> Member:
    with environment_scope(environment):
        return Member.objects.get(environment=environment, external_id=external_id)


@pytest.mark.django_db
def test_upsert__creates_members_with_their_homes_and_liens(tenant):
    env = tenant.production
    result = _upsert(api_client(env), [member_row(1), member_row(2, is_test=True)])
    assert (result["created"], result["updated"], result["unchanged"]) == (2, 0, 0)
    assert [(r["index"], r["external_id"], r["status"]) for r in result["rows"]] == [
        (0, "M000001", "created"),
        (1, "M000002", "created"),
    ]
    member = _member(env, "M000002")
    assert result["rows"][1]["id"] == member.pk
    assert (member.email, member.last_name, member.is_test) == (
        "m2@members.example",
        "Member2",
        True,
    )
    assert member.enrollment == Member.Enrollment.PENDING
    with environment_scope(env):
        home = Property.objects.get(member=member)
        lien = Lien.objects.get(property=home)
    assert (home.external_id, home.street, home.state, home.bathrooms) == (
        "MH000002",
        "102 Pine Street",
        "WA",
        Decimal("2.00"),
    )
    assert (lien.position, lien.kind, lien.rate, lien.balance, lien.pmi_monthly) == (
        1,
        "first_mortgage",
        Decimal("6.125"),
        Decimal("250000.50"),
        Decimal("0.00"),
    )
    assert lien.balance_as_of == datetime.date(2025, 1, 1)
    entry = AuditEntry.objects.filter(environment=env, object_type="homes.Member").latest("id")
    assert entry.actor_label.startswith("API key chk_live_")
    assert entry.changes["created"]["after"] == 2


@pytest.mark.django_db
def test_upsert__the_same_batch_again__changes_nothing(tenant):
    env = tenant.production
    client = api_client(env)
    rows = [member_row(i) for i in range(3)]
    _upsert(client, rows)
    before = _member(env, "M000001").updated_at
    audits = AuditEntry.objects.filter(environment=env).count()
    result = _upsert(client, rows)
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 0, 3)
    assert _member(env, "M000001").updated_at == before
    assert AuditEntry.objects.filter(environment=env).count() == audits


@pytest.mark.django_db
def test_upsert__fields_left_out_keep_their_value__given_liens_replace_the_homes_liens(tenant):
    env = tenant.production
    client = api_client(env)
    row = member_row(1)
    row["properties"][0]["liens"].append(
        {**row["properties"][0]["liens"][0], "position": 2, "kind": "heloc", "balance": 5000}
    )
    _upsert(client, [row])
    before = _member(env, "M000001").updated_at
    result = _upsert(
        client,
        [
            {
                "external_id": "M000001",
                "first_name": "Robin",
                "properties": [
                    {
                        "external_id": "MH000001",
                        "street": "101 Pine Street",
                        "liens": [{**row["properties"][0]["liens"][0], "balance": 240000}],
                    }
                ],
            }
        ],
    )
    assert result["rows"][0]["status"] == "updated"
    member = _member(env, "M000001")
    assert (member.first_name, member.last_name, member.email) == (
        "Robin",
        "Member1",
        "m1@members.example",
    )
    assert member.updated_at > before
    with environment_scope(env):
        home = Property.objects.get(external_id="MH000001")
        liens = list(Lien.objects.filter(property=home).values_list("position", "balance"))
    assert home.living_sqft == row["properties"][0]["living_sqft"]  # left out: kept
    assert liens == [(1, Decimal("240000.00"))]  # the second lien is gone


@pytest.mark.django_db
def test_upsert__a_home_moving_to_another_member__changes_both(tenant):
    env = tenant.production
    client = api_client(env)
    _upsert(client, [member_row(1), member_row(2, properties=[])])
    seller_before = _member(env, "M000001").updated_at
    home = member_row(1)["properties"][0]
    result = _upsert(client, [member_row(2, properties=[home])])
    assert result["rows"][0]["status"] == "updated"
    with environment_scope(env):
        assert Property.objects.get(external_id="MH000001").member == _member(env, "M000002")
    assert _member(env, "M000001").updated_at > seller_before


@pytest.mark.django_db
def test_upsert__new_homes_are_valued_and_equity_computed_after_commit(
    tenant, django_capture_on_commit_callbacks
):
    env = tenant.staging
    home_settings_factory(env, provider_order=["mock"])
    with django_capture_on_commit_callbacks(execute=True):
        _upsert(api_client(env), [member_row(1)])
    with environment_scope(env):
        home = Property.objects.get(external_id="MH000001")
    assert home.value is not None
    assert home.valued_on == institution_today(env)
    assert home.lien_balance is not None
    assert home.equity == home.value - home.lien_balance


@pytest.mark.django_db
def test_upsert__broker_down__answers_200__the_equity_tick_does_the_work_left_waiting(
    tenant, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    env = tenant.staging
    home_settings_factory(env, provider_order=["mock"])
    client = api_client(env)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    def post_with_the_broker_down(row, key):
        with monkeypatch.context() as broker:
            broker.setattr(properties_sync, "delay", broker_down)
            broker.setattr(properties_sync, "apply_async", broker_down)
            with django_capture_on_commit_callbacks(execute=True):
                response = _post_members(client, [row], key)
        assert response.status_code == 200, response.content
        assert "broker unreachable" in caplog.text
        caplog.clear()
        # The data is committed and the answer stored: a retry gets it, changes nothing.
        again = _post_members(client, [row], key)
        assert (again.status_code, again["Idempotent-Replayed"]) == (200, "true")
        assert again.json() == response.json()

    def tick_at(moment) -> Property:
        with monkeypatch.context() as clock:
            clock.setattr(timezone, "now", lambda: moment)
            equity_tick.delay()
        with environment_scope(env):
            return Property.objects.get(external_id="MH000001")

    # A new home: committed and remembered as waiting for its valuation.
    post_with_the_broker_down(member_row(1), "k-new")
    home = tick_at(timezone.now())  # within the grace period its task may still come
    assert home.value is None
    assert home.valuation_requested_at is not None
    home = tick_at(timezone.now() + REFRESH_GRACE + datetime.timedelta(seconds=1))
    assert home.value is not None
    assert home.equity == home.value - home.lien_balance
    assert home.valuation_requested_at is None

    # A new lien balance on a home computed today: its recompute is remembered too.
    row = member_row(1)
    row["properties"][0]["liens"][0]["balance"] = 100000
    post_with_the_broker_down(row, "k-lien")
    with environment_scope(env):
        assert Property.objects.get(pk=home.pk).recompute_requested_at is not None
    home = tick_at(timezone.now() + REFRESH_GRACE + datetime.timedelta(seconds=1))
    assert home.lien_balance < Decimal("100000.01")  # amortized from the new balance
    assert home.recompute_requested_at is None


@pytest.mark.django_db
def test_list__pages_with_a_cursor_and_syncs_incrementally(tenant):
    env = tenant.production
    client = api_client(env)
    _upsert(client, [member_row(i) for i in range(5)])
    seen, cursor = [], None
    while True:
        url = "/api/v1/members/?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen += [m["external_id"] for m in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"M{i:06d}" for i in range(5)]
    first = client.get("/api/v1/members/?limit=1").json()["results"][0]
    assert first["properties"][0]["liens"][0]["rate"] == 6.125
    assert first["properties"][0]["value"] is None

    mark = timezone.now()
    _upsert(client, [member_row(3, last_name="Changed")])
    since = mark.isoformat().replace("+00:00", "Z")
    changed = client.get("/api/v1/members/", {"updated_since": since}).json()["results"]
    assert [(m["external_id"], m["last_name"]) for m in changed] == [("M000003", "Changed")]


def _synced_since(client, mark) -> list[dict]:
    since = mark.isoformat().replace("+00:00", "Z")
    return client.get("/api/v1/members/", {"updated_since": since, "limit": 1000}).json()["results"]


@pytest.mark.django_db
def test_list__revalued_and_recomputed_homes__reach_the_incremental_sync(tenant):
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    client = api_client(env)
    homes = COPY_MIN_ROWS + 10  # a batch large enough for COPY on PostgreSQL
    _upsert(client, [member_row(i) for i in range(1, homes + 1)])
    today = institution_today(env).isoformat()

    mark = timezone.now()
    value = {"property": "MH000001", "value": 510000, "fsd": 0.06, "as_of": today}
    assert client.post("/api/v1/valuations/", {"valuations": [value]}, format="json").json() == {
        "imported": 1
    }
    (synced,) = _synced_since(client, mark)
    assert synced["external_id"] == "M000001"
    assert synced["properties"][0]["value"] == 510000.0
    assert synced["properties"][0]["equity"] is not None

    mark = timezone.now()
    with environment_scope(env), CaptureQueriesContext(connection) as queries:
        assert properties_recompute(environment=env) == homes  # as the equity tick does
    member_updates = [q for q in queries if re.match(r'UPDATE "?homes_member"? ', q["sql"])]
    assert len(member_updates) == 1  # one statement for the batch, not one per member
    assert {m["external_id"] for m in _synced_since(client, mark)} == {
        f"M{i:06d}" for i in range(1, homes + 1)
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=WzEsMl0", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=5.0", "limit"),
        ("updated_since=2026-01-01T00:00:00", "updated_since"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2026-01-01T00:00:00%2B22:53", "updated_since"),
        ("updated_since=0369-08-07T17:33:06Z", "updated_since"),
        ("updated_since=", "updated_since"),
    ],
)
def test_list__bad_query__is_bad_input(tenant, query, field):
    response = api_client(tenant.production).get(f"/api/v1/members/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_detail__shows_the_member_only_in_its_own_environment(tenant, other_tenant):
    _upsert(api_client(tenant.production), [member_row(1)])
    response = api_client(tenant.production).get("/api/v1/members/M000001/")
    assert response.status_code == 200
    assert response.json()["properties"][0]["external_id"] == "MH000001"
    for env in (tenant.staging, other_tenant.production):
        assert api_client(env).get("/api/v1/members/M000001/").status_code == 404


@pytest.mark.django_db
def test_erase__removes_personal_data__keeps_events_and_deliveries_anonymous(tenant):
    env = tenant.production
    client = api_client(env)
    _upsert(client, [member_row(1), member_row(2)])
    member, other = _member(env, "M000001"), _member(env, "M000002")
    event = EventFactory(environment=env, member=member, is_test=False)
    sent = DeliveryFactory(environment=env, member=member, context={"first_name": "Pat"})
    pending = DeliveryFactory(environment=env, member=member, state=Delivery.State.PENDING)
    PushSubscriptionFactory(environment=env, member=member)
    MemberOfferFactory(environment=env, member=member)
    with environment_scope(env):  # an officer corrects the email: the audit trail holds both
        member_update(environment=env, member=member, email="pat.one@members.example")
    assert "m1@members.example" in _audit_text(env)
    assert "pat.one@members.example" in _audit_text(env)

    response = client.post("/api/v1/members/M000001/erase/", HTTP_IDEMPOTENCY_KEY="erase-1")
    assert response.status_code == 200
    assert response.json()["id"] == member.pk
    with environment_scope(env):
        member.refresh_from_db()
        assert (member.email, member.first_name, member.last_name, member.external_id) == (
            "",
            "",
            "",
            "",
        )
        assert member.erased_at is not None
        assert not Property.objects.filter(external_id="MH000001").exists()
        event.refresh_from_db()
        assert event.member_id is None  # kept for aggregates, no longer naming anyone
        assert Event.objects.filter(environment=env).count() == 1
        sent.refresh_from_db()
        pending.refresh_from_db()
        assert (sent.state, sent.context) == (Delivery.State.SENT, {})
        assert pending.state == Delivery.State.SUPPRESSED
        assert not PushSubscription.objects.filter(member=member).exists()
        assert Property.objects.filter(member=other).exists()  # others untouched
    assert "m1@members.example" not in _audit_text(env)
    assert "pat.one@members.example" not in _audit_text(env)
    # A retry is answered the same; afterwards the member is unknown here.
    again = client.post("/api/v1/members/M000001/erase/", HTTP_IDEMPOTENCY_KEY="erase-1")
    assert again.status_code == 200
    assert again.json() == response.json()
    assert client.get("/api/v1/members/M000001/").status_code == 404
    assert client.post("/api/v1/members/M000001/erase/").status_code == 404
    listed = [m["id"] for m in client.get("/api/v1/members/").json()["results"]]
    assert listed == [other.pk]
    # Pushed again by the core system, it is a new member.
    assert _upsert(client, [member_row(1)])["created"] == 1


@pytest.mark.django_db
def test_erase__removes_the_members_appointment_notes(tenant):
    """The member row stays as a tombstone, so nothing cascades to their appointments: the
    note they wrote to the loan officer (phone numbers, circumstances) is blanked, and the
    upcoming appointment is cancelled (its calendar event naming the member goes too)."""
    env = tenant.production
    client = api_client(env)
    _upsert(client, [member_row(1)])
    member = _member(env, "M000001")
    appointment = AppointmentFactory(
        environment=env, member=member, note="Call me on 206-555-0100 about the divorce."
    )

    assert client.post("/api/v1/members/M000001/erase/").status_code == 200
    with environment_scope(env):
        appointment.refresh_from_db()
    assert (appointment.note, appointment.status) == ("", Appointment.Status.CANCELLED)


@pytest.mark.django_db
def test_offers__matched_for_a_member_with_what_they_did(tenant):
    env = tenant.production
    client = api_client(env)
    _upsert(client, [member_row(1)])
    member = _member(env, "M000001")
    with environment_scope(env):
        home = Property.objects.get(member=member)
    match = OfferMatchFactory(environment=env, property=home, member=member)
    now = timezone.now()
    MemberOfferFactory(
        environment=env, member=member, product=match.product, saved_at=now, view_count=2
    )
    response = client.get("/api/v1/members/M000001/offers/")
    assert response.status_code == 200
    (offer,) = response.json()["results"]
    assert offer["product"]["id"] == match.product_id
    assert offer["property"] == "MH000001"
    assert offer["benefit"] == 40000.0
    assert offer["saved_at"] is not None
    assert offer["selected_at"] is None
    no_scope = api_client(env, scopes=["members:read"])
    assert no_scope.get("/api/v1/members/M000001/offers/").status_code == 403


@pytest.mark.django_db
def test_valuations__imported_and_the_homes_revalued(tenant):
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    client = api_client(env)
    _upsert(client, [member_row(1), member_row(2)])
    today = institution_today(env).isoformat()
    response = client.post(
        "/api/v1/valuations/",
        {
            "vendor": "acme-avm",
            "valuations": [
                {"property": "MH000001", "value": 510000, "fsd": 0.06, "as_of": today},
                {
                    "property": "MH000002",
                    "value": 480000,
                    "low": 450000,
                    "high": 500000,
                    "as_of": today,
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"imported": 2}
    with environment_scope(env):
        assert VendorValue.objects.filter(vendor="acme-avm").count() == 2
        assert Property.objects.get(external_id="MH000001").value == Decimal("510000.00")


@pytest.mark.django_db
def test_valuations__bad_rows_are_named_by_index_and_nothing_is_stored(tenant):
    env = tenant.staging
    client = api_client(env)
    _upsert(client, [member_row(1)])
    day = institution_today(env)
    today = day.isoformat()
    earlier = [(day - datetime.timedelta(days=n)).isoformat() for n in (1, 2)]
    response = client.post(
        "/api/v1/valuations/",
        {
            "valuations": [
                {"property": "MH000001", "value": 510000, "fsd": 0.06, "as_of": today},
                {"property": "NOPE", "value": 1, "fsd": 0.06, "as_of": today},
                {
                    "property": "MH000001",
                    "value": 500000,
                    "low": 600000,
                    "high": 700000,
                    "as_of": earlier[0],
                },
                {"property": "MH000001", "value": 500000, "as_of": earlier[1]},
            ]
        },
        format="json",
    )
    assert response.status_code == 400
    rows = {r["index"]: r["fields"] for r in response.json()["error"]["rows"]}
    assert rows == {
        1: {"property": ["no property 'NOPE' here."]},
        2: {"low": ["600000.00 is above the value 500000.00."]},
        3: {"fsd": ["give the FSD, or both low and high."]},
    }
    with environment_scope(env):
        assert not VendorValue.objects.exists()


@pytest.mark.django_db
def test_valuations__sub_cent_value__stored_to_the_cent_as_the_csv_upload_stores_it(tenant):
    """homes.finance.rounding: vendor values are kept as given, to the cent, rounded half
    up (cents()), which is what the CSV upload stores for 512000.125 ($512,000.13). The
    same value sent through the API was stored half-even, a cent less."""
    env = tenant.staging
    home_settings_factory(env, provider_order=["vendor"])
    client = api_client(env)
    _upsert(client, [member_row(1)])
    today = institution_today(env).isoformat()
    row = {"property": "MH000001", "value": 512000.125, "low": 480000.005, "high": 540000.025}
    response = client.post(
        "/api/v1/valuations/", {"valuations": [{**row, "as_of": today}]}, format="json"
    )
    assert response.status_code == 200, response.content
    with environment_scope(env):
        stored = VendorValue.objects.values_list("value", "low", "high").get()
        value = Property.objects.get(external_id="MH000001").value
    assert stored == tuple(cents(Decimal(str(row[k]))) for k in ("value", "low", "high"))
    assert stored == (Decimal("512000.13"), Decimal("480000.01"), Decimal("540000.03"))
    assert value == Decimal("512000.13")


@pytest.mark.django_db
def test_valuations__value_older_than_the_vendor_provider_uses__refused_naming_the_field(tenant):
    """A value older than VENDOR_MAX_AGE (180 days) never values its home: it is refused
    as the CSV upload refuses it, naming the row's index and field."""
    env = tenant.staging
    client = api_client(env)
    _upsert(client, [member_row(1)])
    old = institution_today(env) - datetime.timedelta(days=181)
    response = client.post(
        "/api/v1/valuations/",
        {
            "valuations": [
                {"property": "MH000001", "value": 300000, "fsd": 0.05, "as_of": "0001-01-01"},
                {"property": "MH000001", "value": 300000, "fsd": 0.05, "as_of": old.isoformat()},
            ]
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    rows = {r["index"]: r["fields"] for r in response.json()["error"]["rows"]}
    assert rows == {
        0: {"as_of": ["0001-01-01 is more than 180 days ago: a value that old is not used."]},
        1: {"as_of": [f"{old} is more than 180 days ago: a value that old is not used."]},
    }
    with environment_scope(env):
        assert not VendorValue.objects.exists()


@pytest.mark.django_db
def test_sales__imported_by_external_id(tenant):
    env = tenant.production
    client = api_client(env)
    sale = {
        "external_id": "S-1",
        "address": "1 Main St",
        "price": 650000,
        "sale_date": "2025-05-01",
        "latitude": 47.61,
        "longitude": -122.33,
        "living_sqft": 2100,
        "bedrooms": 4,
    }
    response = client.post("/api/v1/sales/", {"sales": [sale]}, format="json")
    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0}
    response = client.post(
        "/api/v1/sales/",
        {"sales": [{**sale, "price": 660000}, {**sale, "external_id": "S-2"}]},
        format="json",
    )
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 0}
    with environment_scope(env):
        assert Sale.objects.get(external_id="S-1").price == Decimal("660000.00")
    response = client.post(
        "/api/v1/sales/",
        {"sales": [sale, sale, {**sale, "external_id": "S-3", "price": 0}]},
        format="json",
    )
    assert response.status_code == 400
    assert {r["index"] for r in response.json()["error"]["rows"]} == {1, 2}
    no_scope = api_client(env, scopes=["members:write"])
    assert no_scope.post("/api/v1/sales/", {"sales": [sale]}, format="json").status_code == 403


def _value_at(client, environment, value) -> None:
    """Import a vendor value of MH000001 dated today (the production default uses vendors)."""
    today = institution_today(environment).isoformat()
    response = client.post(
        "/api/v1/valuations/",
        {"valuations": [{"property": "MH000001", "value": value, "fsd": 0.1, "as_of": today}]},
        format="json",
    )
    assert response.status_code == 200, response.content[:500]


def _read_home(client) -> dict:
    """MH000001 as the member list and the member's page give it (both must read)."""
    listed = client.get("/api/v1/members/")
    assert listed.status_code == 200, listed.content[:500]
    detail = client.get("/api/v1/members/M000001/")
    assert detail.status_code == 200, detail.content[:500]
    assert client.get("/api/v1/members/M000001/offers/").status_code == 200
    (home,) = detail.json()["properties"]
    return home


@pytest.mark.django_db
def test_valuations__a_value_far_below_the_liens__stored_and_the_member_still_reads(tenant):
    """A vendor value typed without a digit ($5,000 under a $600,000 mortgage: a CLTV of
    120) is the institution's to correct. A CLTV over 99.9999 once overflowed its column:
    on PostgreSQL the import answered 500 and was lost; on SQLite it was stored, and every
    read of the member answered 500 after it, stalling the environment's incremental sync."""
    env = tenant.production
    client = api_client(env)
    row = member_row(1)
    row["properties"][0]["liens"][0].update(
        original_amount=600_000, balance=600_000, balance_as_of=str(institution_today(env))
    )
    _upsert(client, [row])
    _value_at(client, env, 5000)
    home = _read_home(client)
    assert (Decimal(str(home["ltv"])), Decimal(str(home["cltv"]))) == (120, 120)
    assert Decimal(str(home["equity"])) == -595_000


@pytest.mark.django_db
def test_valuations__the_extremes_the_api_takes__every_computed_figure_stored_and_read(tenant):
    """The smallest value under nine of the largest liens: an LTV of 10 billion, a CLTV of
    90 billion, equity of -$90 billion. Each fits its column and reads back."""
    env = tenant.production
    client = api_client(env)
    today = str(institution_today(env))
    liens = [
        {
            "position": position,
            "original_amount": 10_000_000_000,
            "rate": 100,
            "term_months": 600,
            "origination_date": today,
            "balance": 10_000_000_000,
            "balance_as_of": today,
        }
        for position in range(1, 10)
    ]
    _upsert(
        client, [member_row(1, properties=[{**member_row(1)["properties"][0], "liens": liens}])]
    )
    _value_at(client, env, 1)
    home = _read_home(client)
    figures = {name: Decimal(str(home[name])) for name in ("lien_balance", "equity", "ltv", "cltv")}
    assert figures == {
        "lien_balance": 90_000_000_000,
        "equity": 1 - 90_000_000_000,
        "ltv": 10_000_000_000,
        "cltv": 90_000_000_000,
    }
    assert home["borrowing_power"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("years_ago", [25, 49])
def test_valuations__a_balance_its_payment_cannot_pay_down__kept_not_compounded(tenant, years_ago):
    """A $10 billion balance of a 1-cent loan at 100%: the scheduled payment (of the
    original amount) never covers a month's interest. Rolled forward, the shortfall
    compounded: to some $10^20 in 25 years (beyond the lien balance's column: a 500 on
    PostgreSQL, every read a 500 on SQLite), past Decimal's precision in 49 (a 500 on the
    import). The last known balance is kept, as a line's is."""
    env = tenant.production
    client = api_client(env)
    since = str(years_after(institution_today(env), -years_ago))
    row = member_row(1)
    row["properties"][0]["liens"][0].update(
        original_amount=0.01,
        balance=10_000_000_000,
        rate=100,
        term_months=600,
        origination_date=since,
        balance_as_of=since,
    )
    _upsert(client, [row])
    _value_at(client, env, 500_000)
    home = _read_home(client)
    assert Decimal(str(home["lien_balance"])) == 10_000_000_000
    assert Decimal(str(home["cltv"])) == 20_000


@pytest.mark.django_db
@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_list__a_cursor_with_a_time_out_of_range__is_bad_input(tenant, when):
    """A cursor is base64 of a JSON list; one altered to a time that overflows in UTC
    reached the database: a 500 on SQLite (OverflowError), on PostgreSQL a page from a
    made-up position. A cursor the API did not give is a 400 naming `cursor`."""
    client = api_client(tenant.production)
    _upsert(client, [member_row(1)])
    cursor = base64.urlsafe_b64encode(json.dumps([when, 1]).encode()).decode().rstrip("=")
    response = client.get("/api/v1/members/", {"cursor": cursor})
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()["error"]["fields"]) == {"cursor"}


@pytest.mark.django_db
def test_list__an_unknown_query_parameter__refused_naming_it(tenant):
    """`?since=` for `?updated_since=` was ignored: the whole list came back as if it were
    the changes. Every parameter the operation takes (and DRF's `format`) is still taken."""
    client = api_client(tenant.production)
    _upsert(client, [member_row(1)])
    response = client.get("/api/v1/members/", {"since": "2026-01-01T00:00:00Z", "limit": 10})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"since": ["Unknown parameter."]}
    taken = {"updated_since": "2000-01-01T00:00:00Z", "limit": 1, "format": "json"}
    first = client.get("/api/v1/members/", taken)
    assert first.status_code == 200, first.content[:300]
    assert [m["external_id"] for m in first.json()["results"]] == ["M000001"]


def _emails(environment) -> dict[str, str]:
    with environment_scope(environment):
        members = Member.objects.filter(environment=environment)
        return dict(members.values_list("external_id", "email"))


@pytest.mark.django_db
def test_upsert__an_email_given_up_and_taken_in_the_same_batch__is_accepted(tenant):
    """members_check compared a row's email with the emails stored before the batch, not
    with what the batch leaves: when member A1 changes to a new address and a new member B1
    takes A1's old one in the same batch, B1's row was refused with "Is the email of another
    member (A1)", no longer true once the batch is applied. A core banking sync (a
    household's shared address moving to the spouse) then failed every night until someone
    split the batch by hand."""
    env = tenant.production
    client = api_client(env)
    _upsert(client, [{"external_id": "A1", "email": "shared@example.com"}])

    rows = [
        {"external_id": "A1", "email": "a1@example.com"},
        {"external_id": "B1", "email": "shared@example.com"},
    ]
    assert [r["status"] for r in _upsert(client, rows)["rows"]] == ["updated", "created"]
    assert _emails(env) == {"A1": "a1@example.com", "B1": "shared@example.com"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("moves", "after"),
    [
        pytest.param(
            {"A1": "b@example.com", "B1": "a@example.com"},
            {"A1": "b@example.com", "B1": "a@example.com", "C1": "c@example.com"},
            id="swap",
        ),
        pytest.param(
            {"A1": "b@example.com", "B1": "c@example.com", "C1": "new@example.com"},
            {"A1": "b@example.com", "B1": "c@example.com", "C1": "new@example.com"},
            id="chain",
        ),
        pytest.param(
            {"C1": "a@example.com", "B1": "c@example.com", "A1": "b@example.com"},
            {"A1": "b@example.com", "B1": "c@example.com", "C1": "a@example.com"},
            id="cycle-of-three",
        ),
        pytest.param(
            {"D1": "a@example.com", "A1": ""},
            {"A1": "", "B1": "b@example.com", "C1": "c@example.com", "D1": "a@example.com"},
            id="given-up-for-none-taken-by-a-new-member",
        ),
    ],
)
def test_upsert__emails_moving_between_members_in_one_batch__are_written(tenant, moves, after):
    """Members exchanging addresses, or passing them along, in one batch: the check accepts
    them (each address ends with one member) and the write does too, although the unique
    index on lower(email) is checked row by row (a swap in one UPDATE breaks it on SQLite
    and PostgreSQL alike). A1's address is stored in capitals, as the admin may keep it:
    the index compares lower-case."""
    env = tenant.production
    MemberFactory(environment=env, external_id="A1", email="A@Example.COM")
    MemberFactory(environment=env, external_id="B1", email="b@example.com")
    MemberFactory(environment=env, external_id="C1", email="c@example.com")
    client = api_client(env)

    rows = [{"external_id": e, "email": email} for e, email in moves.items()]
    answer = _upsert(client, rows)
    assert answer["created"] + answer["updated"] == len(rows)
    assert _emails(env) == after
    assert _upsert(client, rows)["unchanged"] == len(rows)  # and the batch again: nothing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "errors"),
    [
        pytest.param(
            [{"external_id": "B1", "email": "a@example.com"}],
            {0: {"email": ["Is the email of another member (A1)."]}},
            id="held-by-a-member-not-in-the-batch",
        ),
        pytest.param(
            [
                {"external_id": "A1", "first_name": "Al"},
                {"external_id": "B1", "email": "a@example.com"},
            ],
            {1: {"email": ["Is the email of another member (A1)."]}},
            id="held-by-a-member-whose-row-leaves-its-email-out",
        ),
        pytest.param(
            [
                {"external_id": "A1", "email": "a@example.com"},
                {"external_id": "B1", "email": "a@example.com"},
            ],
            {
                1: {
                    "email": [
                        "Repeats the email of row 0.",
                        "Is the email of another member (A1).",
                    ]
                }
            },
            id="kept-by-its-holders-own-row",
        ),
        pytest.param(
            [
                {"external_id": "A1", "email": "a1@example.com"},
                {"external_id": "B1", "email": "a@example.com"},
                {"external_id": "C1", "email": "a@example.com"},
            ],
            {2: {"email": ["Repeats the email of row 1."]}},
            id="given-up-and-taken-by-two-rows",
        ),
        pytest.param(
            [
                {"external_id": "A1", "email": "a1@example.com"},
                {"external_id": "B1", "email": "a@example.com"},
                {"external_id": "C1", "email": "not-an-email"},
            ],
            {2: {"email": ["Enter a valid email address."]}},
            id="a-batch-refused-for-another-row-does-not-name-the-taker",
        ),
    ],
)
def test_upsert__an_email_that_two_members_would_share__is_still_refused(tenant, rows, errors):
    """What the batch leaves is what counts: an address is refused when, once the batch is
    applied, two members would have it, and the whole batch changes nothing."""
    env = tenant.production
    MemberFactory(environment=env, external_id="A1", email="a@example.com", first_name="Pat")
    response = api_client(env).post("/api/v1/members/", {"members": rows}, format="json")
    assert response.status_code == 400, response.content[:2000]
    assert {r["index"]: r["fields"] for r in response.json()["error"]["rows"]} == errors
    assert _emails(env) == {"A1": "a@example.com"}
    assert _member(env, "A1").first_name == "Pat"
