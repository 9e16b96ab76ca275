"""Valuation providers behind one interface, tried in the institution's order.

A provider values a batch of properties and answers None for a property it cannot value.
`value_properties` asks each provider in turn for the properties still without an answer,
and treats an answer whose FSD is above the institution's threshold as no answer.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from threading import Lock

from django.conf import settings

from homes.finance.rounding import cents
from homes.models import Property, Provider, Sale, VendorValue
from homes.valuation import store
from homes.valuation.estimator import Comparable, ComparableSalesEstimator, Estimate, Subject

FSD_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class ValueResult:
    value: Decimal
    low: Decimal
    high: Decimal
    fsd: Decimal
    confidence: int
    # The date the value is as of, when the provider's is its own (a vendor's file); None:
    # as of the valuation's date.
    as_of: date | None = None


def confidence_of(fsd: Decimal) -> int:
    """P(|error| ≤ 10%) in percent for a normal error with sd = fsd (the usual AVM reading)."""
    fsd = float(fsd)
    if fsd <= 0:
        return 100
    return max(0, min(100, round(100 * math.erf(0.1 / (fsd * math.sqrt(2))))))


class ValuationProvider:
    name: str = ""

    def value_many(self, properties: list[Property], as_of: date) -> dict[int, ValueResult]:
        """Values by property id; a property left out has no answer from this provider."""
        raise NotImplementedError


# -- comparable sales -------------------------------------------------------------------

_SALE_FIELDS = (
    "id", "price", "sale_date", "latitude", "longitude", "living_sqft", "lot_sqft", "bedrooms",
    "bathrooms", "year_built", "grade", "condition", "view", "waterfront", "floors",
    "yr_renovated", "sqft_basement", "sqft_living15", "sqft_lot15", "zipcode",
)  # fmt: skip
_estimators: OrderedDict[str, ComparableSalesEstimator] = OrderedDict()
_estimators_lock = Lock()
_CACHE_SIZE = 4
#: What the estimator reads of a sale (all but the caller's opaque id).
_CONTENT_FIELDS = tuple(f.name for f in fields(Comparable) if f.name != "id")


def _comparables(environment) -> list[Comparable]:
    rows = Sale.objects.filter(environment=environment).order_by("id").values_list(*_SALE_FIELDS)
    return [
        Comparable(
            id=r[0],
            price=r[1],
            sale_date=r[2],
            lat=r[3],
            lon=r[4],
            living_sqft=r[5],
            lot_sqft=r[6],
            bedrooms=r[7],
            bathrooms=r[8],
            year_built=r[9],
            grade=r[10],
            condition=r[11],
            view=r[12],
            waterfront=r[13],
            floors=r[14],
            yr_renovated=r[15],
            sqft_basement=r[16],
            sqft_living15=r[17],
            sqft_lot15=r[18],
            zipcode=r[19] or None,
        )
        for r in rows
    ]


def _fingerprint(sales: list[Comparable]) -> str:
    # By content, not ids: environments holding the same recorded sales share one estimator
    # (ids only label the comparables; the sales are the same). Every field the estimator
    # reads counts: a sale corrected in any of them builds a new estimator.
    digest = hashlib.blake2b(digest_size=16)
    for s in sales:
        digest.update("|".join(str(getattr(s, name)) for name in _CONTENT_FIELDS).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _store_directory() -> Path | None:
    """Where fitted estimators are kept (None: each process fits its own)."""
    configured = getattr(settings, "HOMES_ESTIMATOR_DIR", "")
    return Path(configured) if configured else None


def sales_estimator(environment) -> ComparableSalesEstimator | None:
    """The estimator over the environment's recorded sales (built once per distinct set)."""
    sales = _comparables(environment)
    if not sales:
        return None
    key = _fingerprint(sales)
    with _estimators_lock:
        if key in _estimators:
            _estimators.move_to_end(key)
            return _estimators[key]
    directory = _store_directory()
    if directory is None:
        estimator = ComparableSalesEstimator(sales)
    else:  # fitted by one process, read by the others (homes.valuation.store)
        estimator = store.load_or_build(directory, key, lambda: ComparableSalesEstimator(sales))
    with _estimators_lock:
        _estimators[key] = estimator
        while len(_estimators) > _CACHE_SIZE:
            _estimators.popitem(last=False)
    return estimator


def subject_of(p: Property) -> Subject | None:
    if p.latitude is None or p.longitude is None or not p.living_sqft:
        return None
    return Subject(
        lat=p.latitude,
        lon=p.longitude,
        living_sqft=p.living_sqft,
        lot_sqft=p.lot_sqft,
        bedrooms=p.bedrooms,
        bathrooms=float(p.bathrooms) if p.bathrooms is not None else None,
        year_built=p.year_built,
        grade=p.grade,
        condition=p.condition,
        zipcode=p.postal_code or None,
    )


def result_of_estimate(estimate: Estimate) -> ValueResult:
    return ValueResult(
        value=estimate.value,
        low=estimate.low,
        high=estimate.high,
        fsd=Decimal(estimate.fsd).quantize(FSD_PLACES),
        confidence=int(estimate.confidence),
    )


class ComparableSalesProvider(ValuationProvider):
    name = Provider.COMPARABLE

    def __init__(self, environment, estimator: ComparableSalesEstimator | None = None):
        self.environment = environment
        self._estimator = estimator
        self._loaded = estimator is not None

    @property
    def estimator(self) -> ComparableSalesEstimator | None:
        if not self._loaded:
            self._estimator, self._loaded = sales_estimator(self.environment), True
        return self._estimator

    def value_many(self, properties, as_of):
        subjects = [(p.pk, subject_of(p)) for p in properties]
        subjects = [(pk, s) for pk, s in subjects if s is not None]
        if not subjects or self.estimator is None:
            return {}
        estimates = self.estimator.estimate_many([s for _, s in subjects])
        return {
            pk: result_of_estimate(e)
            for (pk, _), e in zip(subjects, estimates, strict=True)
            if e is not None
        }


# -- vendor values ----------------------------------------------------------------------


#: The largest amount a money field holds (14 digits, 2 after the point).
MAX_MONEY = Decimal("999999999999.99")


def vendor_range(value, low, high, fsd) -> tuple[Decimal, Decimal]:
    """A vendor value's range to the cent: low and high as given, else value * (1 ± FSD)."""
    value, fsd = cents(value), Decimal(fsd).quantize(FSD_PLACES)
    low = cents(low) if low is not None else cents(value * (1 - fsd))
    high = cents(high) if high is not None else cents(value * (1 + fsd))
    return low, high


def vendor_result(value, low, high, fsd, as_of: date | None = None) -> ValueResult | None:
    """A vendor's value; the FSD comes from the vendor, else from its range (±1 sd).

    None (no answer) when its range does not fit a money field: the import refuses such a
    value, and one stored before it did must not stop a refresh or a home's page.
    """
    value = cents(value)
    if fsd is None:
        fsd = (Decimal(high) - Decimal(low)) / (2 * value)
    fsd = Decimal(fsd).quantize(FSD_PLACES)
    low, high = vendor_range(value, low, high, fsd)
    if low < 0 or high > MAX_MONEY:
        return None
    return ValueResult(value, low, high, fsd, confidence_of(fsd), as_of)


#: A vendor value older than this is no answer (the next provider is asked): a home's
#: value from a year ago is not its value today.
VENDOR_MAX_AGE = timedelta(days=180)


class VendorProvider(ValuationProvider):
    """The newest vendor value of each home, dated as the vendor dated it (not with the day
    it was used), if it is at most VENDOR_MAX_AGE old."""

    name = Provider.VENDOR

    def value_many(self, properties, as_of):
        ids = [p.pk for p in properties]
        rows = (
            VendorValue.objects.filter(
                property_id__in=ids, as_of__lte=as_of, as_of__gte=as_of - VENDOR_MAX_AGE
            )
            .order_by("property_id", "-as_of", "-id")
            .values_list("property_id", "value", "low", "high", "fsd", "as_of")
        )
        answers: dict[int, ValueResult] = {}
        for pid, value, low, high, fsd, dated in rows:
            if pid not in answers:  # the newest usable value of each property
                result = vendor_result(value, low, high, fsd, dated)
                if result is not None:
                    answers[pid] = result
        return answers


# -- mock -------------------------------------------------------------------------------


class MockProvider(ValuationProvider):
    """Deterministic values for staging: the same property and month give the same value."""

    name = Provider.MOCK

    def value_many(self, properties, as_of):
        answers = {}
        for p in properties:
            h = int.from_bytes(hashlib.sha256(f"{p.pk}:{as_of:%Y-%m}".encode()).digest()[:8], "big")
            per_sqft = Decimal(220 + h % 260)
            sqft = p.living_sqft or 1800
            value = (per_sqft * sqft / 1000).quantize(Decimal(1), ROUND_HALF_EVEN) * 1000
            fsd = Decimal(5 + (h >> 16) % 12) / 100
            answers[p.pk] = ValueResult(
                value,
                cents(value * (1 - fsd)),
                cents(value * (1 + fsd)),
                fsd.quantize(FSD_PLACES),
                confidence_of(fsd),
            )
        return answers


def production_order(order: list[str]) -> list[str]:
    """The providers of `order` that production uses: the mock is for staging, and
    production skips it, also when a promoted order lists it, so a member never sees a
    made-up value. Empty: production would value no home (releases refuse such an order)."""
    return [name for name in order if name in Provider.values and name != Provider.MOCK]


def providers_for(environment, order: list[str], *, estimator=None) -> list[ValuationProvider]:
    """The providers of `order`, in order (production's: production_order)."""
    made = {
        Provider.COMPARABLE: lambda: ComparableSalesProvider(environment, estimator),
        Provider.VENDOR: VendorProvider,
        Provider.MOCK: MockProvider,
    }
    if environment.is_production:
        order = production_order(order)
    return [made[name]() for name in order if name in made]


def value_properties(
    properties: list[Property],
    providers: list[ValuationProvider],
    *,
    fsd_threshold: Decimal,
    as_of: date,
) -> dict[int, tuple[str, ValueResult]]:
    """Each property's value from the first provider that answers within the FSD threshold
    with a value at least as recent as the property's own (`valued_on`).

    An answer dated before the property's current value is no answer (the next provider is
    asked): a vendor's value of last month must not replace one the home got since, nor a
    value as of an earlier `as_of` one of today, setting the member's value and its date
    back. A property none answers keeps its value.
    """
    current = {p.pk: getattr(p, "valued_on", None) for p in properties}
    chosen: dict[int, tuple[str, ValueResult]] = {}
    for provider in providers:
        remaining = [p for p in properties if p.pk not in chosen]
        if not remaining:
            break
        for pk, result in provider.value_many(remaining, as_of).items():
            if result.fsd > fsd_threshold:
                continue
            valued_on = current.get(pk)
            if valued_on is not None and (result.as_of or as_of) < valued_on:
                continue
            chosen[pk] = (provider.name, result)
    return chosen
