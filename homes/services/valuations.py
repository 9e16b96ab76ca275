"""Revaluation of one property or a batch (an environment-wide run: homes.services.refresh)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from homes.models import Property
from homes.selectors import home_settings
from homes.services.recompute import (
    COMPUTED_FIELDS,
    VALUE_FIELDS,
    HomeRow,
    Recomputer,
    copy_back,
    home_rows,
)
from homes.services.store import ValuationRow
from homes.valuation.providers import providers_for, value_properties
from institutions import events


class Revaluer:
    """Values batches of properties with the environment's providers, then recomputes them."""

    def __init__(self, environment, *, as_of: date | None = None, estimator=None):
        self.environment = environment
        self.as_of = as_of or environment.institution.today()
        self.settings = home_settings(environment)
        self.providers = providers_for(
            environment, list(self.settings.provider_order), estimator=estimator
        )
        self.recomputer = Recomputer(environment, today=self.as_of, settings=self.settings)

    def revalue_rows(self, rows: list[HomeRow]) -> int:
        """Value, record the valuation (history), store equity and matches. Returns # valued."""
        chosen = value_properties(
            rows,
            self.providers,
            fsd_threshold=self.settings.fsd_threshold,
            as_of=self.as_of,
        )
        valuations, changed = [], []
        for row in rows:
            answer = chosen.get(row.pk)
            if answer is None:
                continue  # no provider answered within the threshold: keep the last value
            provider, result = answer
            change = _change_pct(row.value, result.value)
            if change is not None:
                changed.append((row, change))
            dated = result.as_of or self.as_of  # a vendor's value keeps the vendor's date
            row.value, row.value_low, row.value_high = result.value, result.low, result.high
            row.confidence, row.valued_on = result.confidence, dated
            valuations.append(
                ValuationRow(
                    row.pk,
                    provider,
                    result.value,
                    result.low,
                    result.high,
                    result.confidence,
                    result.fsd,
                    dated,
                )
            )
        with transaction.atomic():
            self.recomputer.apply_rows(
                rows, fields=[*VALUE_FIELDS, *COMPUTED_FIELDS], valuations=valuations
            )
            _emit_value_changes(self.environment, changed)
        return len(valuations)

    def revalue(self, properties: list[Property]) -> int:
        """Revalue these properties (as saved) and set the new figures on the instances."""
        if not properties:
            return 0
        rows = home_rows(self.environment, ids=[p.pk for p in properties])
        valued = self.revalue_rows(rows)
        copy_back(rows, properties, [*VALUE_FIELDS, *COMPUTED_FIELDS])
        return valued


#: Changes smaller than this are noise from re-estimation, not news for a member.
VALUE_CHANGE_EVENT_MIN_PCT = Decimal("1.0")


def _change_pct(previous, current) -> Decimal | None:
    if not previous or current is None:
        return None
    pct = ((current - previous) / previous * 100).quantize(Decimal("0.1"))
    return pct if abs(pct) >= VALUE_CHANGE_EVENT_MIN_PCT else None


def _emit_value_changes(environment, changed) -> None:
    events.emit_many(
        environment=environment,
        items=[
            (
                "home_value_changed",
                row.member,
                {"property_id": row.pk, "change_pct": float(change)},
            )
            for row, change in changed
            if row.member_id is not None
        ],
    )


def property_revalue(*, environment, prop: Property, as_of: date | None = None) -> bool:
    """Revalue one property now (e.g. when it is created); True when a provider answered."""
    return Revaluer(environment, as_of=as_of).revalue([prop]) == 1
