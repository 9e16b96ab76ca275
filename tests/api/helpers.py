"""Clients of the integration API: an environment's host with one of its keys."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.institutions.factories import ALL_SCOPES, api_key_with_secret


def api_client(environment, *, scopes=None, raw_key: str | None = None, host: str | None = None):
    """A client on the environment's host sending a key of it (made here unless given)."""
    key = None
    if raw_key is None:
        key, raw_key = api_key_with_secret(environment, scopes=scopes or ALL_SCOPES)
    client = APIClient(HTTP_HOST=host or environment.host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.api_key = key
    client.raw_key = raw_key
    return client


def member_row(n: int, *, prefix: str = "M", **overrides) -> dict:
    """A member with one home and one first mortgage, as the core banking system sends it."""
    row = {
        "external_id": f"{prefix}{n:06d}",
        "email": f"{prefix.lower()}{n}@members.example",
        "first_name": "Pat",
        "last_name": f"Member{n}",
        "properties": [
            {
                "external_id": f"{prefix}H{n:06d}",
                "street": f"{100 + n} Pine Street",
                "city": "Seattle",
                "state": "WA",
                "postal_code": "98103",
                "latitude": 47.6 + (n % 100) / 1000,
                "longitude": -122.3 - (n % 100) / 1000,
                "bedrooms": 3,
                "bathrooms": 2,
                "living_sqft": 1500 + n % 700,
                "year_built": 1990,
                "liens": [
                    {
                        "position": 1,
                        "kind": "first_mortgage",
                        "original_amount": 300000,
                        "rate": 6.125,
                        "term_months": 360,
                        "origination_date": "2020-03-01",
                        "balance": 250000.5,
                        "balance_as_of": "2025-01-01",
                    }
                ],
            }
        ],
    }
    row.update(overrides)
    return row
