"""A stand-in for homes.selectors.home_summaries, returning the real HomeSummary.

Deterministic from the member id, so a worker process computes the same data as the test;
tests change `OVERRIDES` (member id -> HomeSummary or None) in their own process.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from homes.selectors import HomeSummary

OVERRIDES: dict[int, HomeSummary | None] = {}


def summary_for(member_id: int, **changes) -> HomeSummary:
    value = Decimal(400000 + member_id * 10)
    base = HomeSummary(
        member_id=member_id,
        property_id=member_id,
        address=f"{member_id} Elm Street",
        value=value,
        value_low=value - 20000,
        value_high=value + 20000,
        as_of=date(2026, 5, 1),
        previous_value=value - 8000,
        change_pct=Decimal("2.04"),
        equity=Decimal("180000"),
        borrowing_power=Decimal("95000"),
        top_offer_title="Home equity line of credit",
        top_offer_path=f"/offers/{member_id}/",
        member_rate=Decimal("6.875"),
    )
    return HomeSummary(**{**base.__dict__, **changes})


def home_summaries(*, environment, member_ids) -> dict[int, HomeSummary]:
    out = {}
    for member_id in member_ids:
        summary = OVERRIDES.get(member_id, summary_for(member_id))
        if summary is not None:
            out[member_id] = summary
    return out
