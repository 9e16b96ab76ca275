"""The fast path of batch validation accepts only what the serializers accept, with the same
validated data; and it does take the good batches (else it would be no faster)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from homes.api.serializers import MemberBatchSerializer, SaleBatchSerializer
from homes.api.serializers import VendorValueBatchSerializer as ValuesSerializer
from institutions.api.compiled import Unsure, compiled
from institutions.api.fields import StrictFloatField
from tests.api.helpers import member_row

SALE = {
    "external_id": "S-1",
    "address": "1 Main St",
    "price": 650000.5,
    "sale_date": "2025-05-01",
    "latitude": 47.61,
    "longitude": -122.33,
    "living_sqft": 2100,
    "bedrooms": 4,
    "bathrooms": 2.5,
    "waterfront": False,
    "zipcode": "98103",
}
VALUE = {"property": "H1", "value": 500000, "low": 450000, "high": 550000, "as_of": "2025-01-01"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["", " ", "2025-01-01", "2999-01-01", "2025-02-30", "WA", "heloc", "a@b.co", "X-1", "\x00"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _paths(value, prefix=()):
    """Every place in a JSON document a mutation may hit."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutate(document, path, action, new):
    if not path:
        return new if action == "replace" else document
    *parent_path, last = path
    parent = document
    for step in parent_path:
        parent = parent[step]
    if action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = new
    else:
        parent[last] = new
    return document


def _same(serializer_class, data) -> None:
    fast = compiled(serializer_class)
    assert fast is not None, f"{serializer_class.__name__} has no fast path"
    try:
        value = fast(json.loads(json.dumps(data)))
    except Unsure:
        return  # the serializer decides: nothing to compare
    serializer = serializer_class(data=data)
    assert serializer.is_valid(), (data, serializer.errors)
    assert json.dumps(value, default=repr, sort_keys=True) == json.dumps(
        serializer.validated_data, default=repr, sort_keys=True
    )


def _check_mutations(serializer_class, base, data):
    document = json.loads(json.dumps(base))
    paths = list(_paths(document))
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    document = _mutate(document, path, action, data.draw(json_values))
    _same(serializer_class, document)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_members__fast_path_accepts_only_what_the_serializer_accepts(data):
    base = {"members": [member_row(1), member_row(2, is_test=True, properties=[])]}
    _check_mutations(MemberBatchSerializer, base, data)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_sales_and_values__fast_path_accepts_only_what_the_serializer_accepts(data):
    _check_mutations(SaleBatchSerializer, {"sales": [SALE, {**SALE, "external_id": "S-2"}]}, data)
    _check_mutations(ValuesSerializer, {"vendor": "acme", "valuations": [VALUE]}, data)


@settings(max_examples=200, deadline=None)
@given(
    balance=st.floats(min_value=0, max_value=1e10),
    rate=st.floats(min_value=0, max_value=100),
    bathrooms=st.one_of(st.none(), st.floats(min_value=0, max_value=99)),
    email=st.emails(),
)
def test_members__numbers_and_emails__validate_the_same(balance, rate, bathrooms, email):
    row = member_row(1, email=email)
    row["properties"][0]["bathrooms"] = bathrooms
    row["properties"][0]["liens"][0].update(balance=balance, rate=rate)
    _same(MemberBatchSerializer, {"members": [row]})


def test_good_batches__take_the_fast_path():
    members = {"members": [member_row(i) for i in range(50)]}
    assert compiled(MemberBatchSerializer)(members)["members"][49]["external_id"] == "M000049"
    assert compiled(SaleBatchSerializer)({"sales": [SALE]})["sales"][0]["price"] == 650000.5
    assert compiled(ValuesSerializer)({"valuations": [VALUE]})["valuations"][0]["as_of"]


@pytest.mark.parametrize("number", [10**400, -(10**400)], ids=["huge", "-huge"])
def test_numbers_beyond_a_float__are_refused_by_both_paths_never_raised(number):
    row = member_row(1)
    row["properties"][0]["latitude"] = number
    with pytest.raises(Unsure):
        compiled(MemberBatchSerializer)({"members": [row]})
    serializer = MemberBatchSerializer(data={"members": [row]})
    assert not serializer.is_valid()
    assert "latitude" in serializer.errors["members"][0]["properties"][0]
    with pytest.raises(Unsure):
        compiled(SaleBatchSerializer)({"sales": [{**SALE, "floors": number}]})
    with pytest.raises(ValidationError, match="too large"):
        StrictFloatField().run_validation(number)  # no limits to name: still refused
