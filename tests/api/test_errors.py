"""Bad input gets a 400 naming every bad row and field, never a 500; limits answer in the
same error format (413, 429); nothing is saved from a refused batch."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from homes.models import Member
from institutions.tenancy import environment_scope
from tests.api.helpers import api_client, member_row
from tests.conftest import make_tenant
from tests.factories import MemberFactory
from tests.institutions.factories import api_key_with_secret


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:2000]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields", "rows"}
    return body["error"]


def _count(environment) -> int:
    with environment_scope(environment):
        return Member.objects.filter(environment=environment).count()


@pytest.mark.django_db
def test_batch_with_bad_rows__is_refused_whole__naming_each_bad_row_and_field(tenant):
    env = tenant.production
    rows = [member_row(i) for i in range(6)]
    rows[1]["email"] = "not-an-email"
    rows[3]["properties"][0]["liens"][0].update(rate=112.5, balance=-1)
    rows[3]["properties"][0]["state"] = "Washington"
    rows[4]["properties"][0]["liens"][0]["balance_as_of"] = "2019-01-01"  # before origination
    rows[5]["is_test"] = "yes"
    response = api_client(env).post("/api/v1/members/", {"members": rows}, format="json")
    error = _error(response, 400)
    assert error["code"] == "invalid"
    assert error["message"] == "4 of 6 rows are invalid; nothing was saved."
    assert error["rows"] == [
        {"index": 1, "fields": {"email": ["Enter a valid email address."]}},
        {
            "index": 3,
            "fields": {
                "properties.0.state": [
                    "Two capital letters, e.g. WA.",
                    "Ensure this field has no more than 2 characters.",
                ],
                "properties.0.liens.0.rate": ["Ensure this value is less than or equal to 100."],
                "properties.0.liens.0.balance": [
                    "Ensure this value is greater than or equal to 0."
                ],
            },
        },
        {
            "index": 4,
            "fields": {
                "properties.0.liens.0.balance_as_of": ["Cannot be before the origination date."]
            },
        },
        {"index": 5, "fields": {"is_test": ["Must be true or false."]}},
    ]
    assert _count(env) == 0


@pytest.mark.django_db
def test_batch__rows_that_clash__are_named(tenant):
    env = tenant.production
    MemberFactory(environment=env, email="taken@members.example", external_id="X1")
    rows = [member_row(i) for i in range(5)]
    rows[2]["external_id"] = rows[0]["external_id"]
    rows[3]["email"] = rows[1]["email"].upper()
    rows[4]["email"] = "taken@members.example"
    rows[1]["properties"][0]["external_id"] = rows[0]["properties"][0]["external_id"]
    rows[0]["properties"][0]["liens"].append(dict(rows[0]["properties"][0]["liens"][0]))
    error = _error(api_client(env).post("/api/v1/members/", {"members": rows}, format="json"), 400)
    assert {r["index"]: r["fields"] for r in error["rows"]} == {
        0: {"properties.0.liens.1.position": ["Repeats position 1 (lien 0)."]},
        1: {"properties.0.external_id": ["Repeats a home of row 0."]},
        2: {"external_id": ["Repeats row 0."]},
        3: {"email": ["Repeats the email of row 1."]},
        4: {"email": ["Is the email of another member (X1)."]},
    }
    assert _count(env) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"members": ["This field is required."]}),
        ({"members": []}, {"members": ["This list may not be empty."]}),
        ({"members": {"a": 1}}, {"members": ['Expected a list of items but got type "dict".']}),
        ([1, 2], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ({"members": [member_row(1)], "extra": 1}, {"extra": ["Unknown field."]}),
    ],
)
def test_batch__of_the_wrong_shape__names_the_field(tenant, body, fields):
    response = api_client(tenant.production).post("/api/v1/members/", body, format="json")
    error = _error(response, 400)
    assert error["fields"] == fields
    assert error["rows"] == []


@pytest.mark.django_db
def test_batch__over_a_thousand_rows__is_refused(tenant):
    rows = [{"external_id": f"E{i}"} for i in range(1001)]
    response = api_client(tenant.production).post(
        "/api/v1/members/", {"members": rows}, format="json"
    )
    assert _error(response, 400)["fields"] == {
        "members": ["Ensure this field has no more than 1000 elements."]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"external_id": 12345}, "external_id", "Must be a string."),
        ({"external_id": "has space"}, "external_id", "1-100 letters, digits"),
        ({"external_id": "nul\u0000"}, "external_id", "Null characters are not allowed."),
        ({"external_id": "E1", "typo_name": "Pat"}, "typo_name", "Unknown field."),
        (
            {
                "external_id": "E1",
                "properties": [{"external_id": "H1", "street": "1 A St", "bedrooms": "3"}],
            },
            "properties.0.bedrooms",
            "Must be a whole number.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [{"external_id": "H1", "street": "1 A St", "living_sqft": 10**40}],
            },
            "properties.0.living_sqft",
            "Ensure this value is less than or equal to 1000000.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [{"external_id": "H1", "street": "1 A St", "latitude": 10**400}],
            },
            "properties.0.latitude",
            "Ensure this value is less than or equal to 90.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [{"external_id": "H1", "street": "1 A St", "longitude": -(10**400)}],
            },
            "properties.0.longitude",
            "Ensure this value is greater than or equal to -180.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [
                    {"external_id": "H1", "street": "1 A St", "purchase_price": "400000"}
                ],
            },
            "properties.0.purchase_price",
            "Must be a number.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [
                    {"external_id": "H1", "street": "1 A St", "purchase_date": "2999-01-01"}
                ],
            },
            "properties.0.purchase_date",
            "Cannot be in the future.",
        ),
        (
            {
                "external_id": "E1",
                "properties": [
                    {"external_id": "H1", "street": "1 A St", "purchase_date": "2020-02-30"}
                ],
            },
            "properties.0.purchase_date",
            "Must be a date as YYYY-MM-DD.",
        ),
    ],
)
def test_wrong_types_and_values__are_bad_input_never_a_server_error(tenant, row, field, message):
    response = api_client(tenant.production).post(
        "/api/v1/members/", {"members": [row]}, format="json"
    )
    error = _error(response, 400)
    (only,) = error["rows"]
    assert only["index"] == 0
    assert any(m.startswith(message) for m in only["fields"][field]), only


@pytest.mark.django_db
def test_sales__numbers_beyond_a_float__are_bad_input_naming_row_and_field(tenant):
    env = tenant.production
    sale = {"price": 100000, "latitude": 47.6, "longitude": -122.3, "living_sqft": 1500}
    sales = [
        {**sale, "external_id": "S-0"},
        {**sale, "external_id": "S-1", "latitude": 10**400},
        {**sale, "external_id": "S-2", "longitude": -(10**400), "bathrooms": 10**400},
        {**sale, "external_id": "S-3", "floors": 10**400},
    ]
    response = api_client(env).post("/api/v1/sales/", {"sales": sales}, format="json")
    error = _error(response, 400)
    assert error["rows"] == [
        {"index": 1, "fields": {"latitude": ["Ensure this value is less than or equal to 90."]}},
        {
            "index": 2,
            "fields": {
                "longitude": ["Ensure this value is greater than or equal to -180."],
                "bathrooms": ["Ensure this value is less than or equal to 99."],
            },
        },
        {"index": 3, "fields": {"floors": ["Ensure this value is less than or equal to 200."]}},
    ]


def _dated_rows(day: str) -> tuple[dict, dict, dict]:
    """A member whose home was bought on `day`, a vendor value and a sale of that day."""
    row = member_row(1)
    row["properties"][0]["purchase_date"] = day
    value = {"property": "MH000001", "value": 500000, "fsd": 0.08, "as_of": day}
    sale = {"external_id": "S-1", "price": 1, "sale_date": day, "living_sqft": 1500}
    return row, value, {**sale, "latitude": 47.6, "longitude": -122.3}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("time_zone", "utc_now", "today"),
    [
        # 01:30 on 11 March in Tokyo, still 10 March in UTC.
        ("Asia/Tokyo", datetime.datetime(2026, 3, 10, 16, 30, tzinfo=datetime.UTC), "2026-03-11"),
        # 21:00 on 10 March in New York, already 11 March in UTC.
        (
            "America/New_York",
            datetime.datetime(2026, 3, 11, 1, 0, tzinfo=datetime.UTC),
            "2026-03-10",
        ),
    ],
)
def test_not_in_the_future__is_checked_against_the_institutions_own_today(
    monkeypatch, time_zone, utc_now, today
):
    env = make_tenant(time_zone=time_zone).production
    client = api_client(env)
    monkeypatch.setattr(timezone, "now", lambda: utc_now)
    tomorrow = (datetime.date.fromisoformat(today) + datetime.timedelta(days=1)).isoformat()

    row, value, sale = _dated_rows(tomorrow)
    error = _error(client.post("/api/v1/members/", {"members": [row]}, format="json"), 400)
    assert error["rows"][0]["fields"] == {
        "properties.0.purchase_date": ["Cannot be in the future."]
    }
    error = _error(client.post("/api/v1/sales/", {"sales": [sale]}, format="json"), 400)
    assert error["rows"][0]["fields"] == {"sale_date": ["Cannot be in the future."]}

    row, value, sale = _dated_rows(today)
    assert client.post("/api/v1/members/", {"members": [row]}, format="json").status_code == 200
    assert client.post("/api/v1/sales/", {"sales": [sale]}, format="json").status_code == 200
    response = client.post("/api/v1/valuations/", {"valuations": [value]}, format="json")
    assert response.status_code == 200, response.content
    response = client.post(
        "/api/v1/valuations/", {"valuations": [{**value, "as_of": tomorrow}]}, format="json"
    )
    assert _error(response, 400)["rows"][0]["fields"] == {
        "as_of": [f"{tomorrow} is in the future."]
    }


@pytest.mark.django_db
def test_unpaired_surrogate__is_bad_input(tenant):
    body = '{"members": [{"external_id": "E1", "first_name": "\\ud800"}]}'
    response = api_client(tenant.production).generic(
        "POST", "/api/v1/members/", body, content_type="application/json"
    )
    (row,) = _error(response, 400)["rows"]
    assert row["fields"]["first_name"][0].startswith("Surrogate characters are not allowed")


@pytest.mark.django_db
def test_money__is_rounded_to_cents_and_rates_to_a_thousandth(tenant):
    env = tenant.production
    row = member_row(1)
    row["properties"][0]["liens"][0].update(balance=0.1 + 0.2, rate=6.1255)
    assert (
        api_client(env).post("/api/v1/members/", {"members": [row]}, format="json").status_code
        == 200
    )
    with environment_scope(env):
        lien = Member.objects.get(external_id=row["external_id"]).properties.get().liens.get()
    assert str(lien.balance) == "0.30"
    assert str(lien.rate) == "6.126"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "parse_error"),
        ("[" * 100_000, "application/json", 400, "parse_error"),
        ('{"members": [NaN]}', "application/json", 400, "parse_error"),
        ("members=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies__answer_in_the_error_format(tenant, body, content_type, status, code):
    client = api_client(tenant.production)
    response = client.generic("POST", "/api/v1/members/", body, content_type=content_type)
    assert _error(response, status)["code"] == code


@pytest.mark.django_db
def test_unknown_operation_and_method__answer_in_the_error_format(tenant):
    client = api_client(tenant.production)
    assert _error(client.get("/api/v1/nothing/here/"), 404)["code"] == "not_found"
    assert _error(client.delete("/api/v1/members/"), 405)["code"] == "method_not_allowed"
    assert _error(client.get("/api/v1/members/E%00/"), 404)["code"] == "not_found"
    assert _error(client.get("/api/v1/deliveries/1%0A2/"), 404)["code"] == "not_found"
    assert _error(client.post("/api/v1/members/%C2%84/erase/"), 404)["code"] == "not_found"


@pytest.mark.django_db
def test_request_over_the_size_limit__is_refused_413_before_it_is_read(tenant, settings):
    settings.API_MAX_REQUEST_BYTES = 10_000
    client = api_client(tenant.production)
    body = json.dumps({"members": [member_row(i) for i in range(30)]})
    assert len(body) > 10_000
    response = client.generic("POST", "/api/v1/members/", body, content_type="application/json")
    error = _error(response, 413)
    assert error["code"] == "request_too_large"
    assert error["message"] == "The request body is larger than 10,000 bytes."
    assert _count(tenant.production) == 0


@pytest.mark.django_db
def test_throttle__per_key__answers_429_with_retry_after(tenant, settings):
    settings.API_THROTTLE_RATE = "3/min"
    env = tenant.production
    client = api_client(env)
    for _ in range(3):
        assert client.get("/api/v1/key/").status_code == 200
    response = client.get("/api/v1/key/")
    error = _error(response, 429)
    assert error["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another key of the same environment has its own allowance.
    _, raw = api_key_with_secret(env)
    assert api_client(env, raw_key=raw).get("/api/v1/key/").status_code == 200
