"""Realistic mock homes: a recorded sale of the region as the model of each home, its price
moved along the region's price index to today and to the day it was bought, a mortgage of
that day (rate of its year, amortized to today), sometimes a HELOC or a second mortgage,
and a monthly value history.

Everything comes from one seeded random generator, in a fixed order: the same seed, region
and day give the same rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from decimal import ROUND_HALF_UP, Decimal

from django.db import models

from homes.models import Lien, Property, Sale
from homes.valuation import Comparable
from homes.valuation.providers import confidence_of
from releases.staging_data.regions import Region, mortgage_rate

CENT, THOUSAND = Decimal("0.01"), Decimal(1000)
# Months when rates fell and many refinanced (their first days).
REFINANCE_FROM, REFINANCE_UNTIL = dt.date(2020, 1, 1), dt.date(2021, 12, 1)
ORDINAL = {1: "st", 2: "nd", 3: "rd"}


def _round(value: float, step: int) -> Decimal:
    return (Decimal(str(value)) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def _month_start(day: dt.date, back: int) -> dt.date:
    months = day.year * 12 + day.month - 1 - back
    return dt.date(months // 12, months % 12 + 1, 1)


def _months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month
    return max(months - (end.day < start.day), 0)


def amortized(principal: Decimal, rate_pct: Decimal, term: int, payments: int) -> Decimal:
    """The balance after `payments` level payments (closed form, to the cent)."""
    p, r = float(principal), float(rate_pct) / 1200
    if payments >= term:
        return Decimal(0)
    if r == 0:
        return Decimal(str(p * (1 - payments / term))).quantize(CENT)
    growth = (1 + r) ** payments
    payment = p * r / (1 - (1 + r) ** -term)
    return max(Decimal(str(p * growth - payment * (growth - 1) / r)).quantize(CENT), Decimal(0))


def _from_comparable(model: type[models.Model], c: Comparable, skip: set[str]) -> dict:
    """Every field of `model` that the recorded sale also describes (grade, view, floors...),
    by name, so a descriptor added to the model later is filled too."""
    values = {}
    for f in model._meta.concrete_fields:
        if f.name in skip or f.is_relation or not hasattr(c, f.name):
            continue
        value = getattr(c, f.name)
        if value is None:
            continue
        if isinstance(f, models.DecimalField):
            value = Decimal(str(value))
        elif isinstance(f, models.CharField):
            value = str(value)
        values[f.name] = value
    return values


class HomeMaker:
    """Makes the rows of one mock data set (the caller writes them in bulk)."""

    def __init__(
        self,
        *,
        environment,
        region: Region,
        comparables: list[Comparable],
        rng: random.Random,
        today: dt.date,
        prime_rate: Decimal,
        history_months: int,
    ):
        self.environment, self.region, self.comparables = environment, region, comparables
        self.rng, self.today, self.prime = rng, today, prime_rate
        self.history_months = history_months
        self.statement = _month_start(today, 0)  # balances are known as of the 1st
        self.index = functools.lru_cache(maxsize=None)(region.index)
        self.index_today = self.index(today)
        # The refinance months on or before the data's day (none before 2020).
        self.refinance_months = (
            _months_between(REFINANCE_FROM, min(REFINANCE_UNTIL, today)) + 1
            if today >= REFINANCE_FROM
            else 0
        )

    # -- places ----------------------------------------------------------------------------
    def street(self) -> str:
        rng = self.rng
        number = rng.randint(100, 24999)
        if rng.random() < 0.55:
            n = rng.randint(1, 180)
            ordinal = f"{n}{'th' if 10 <= n % 100 <= 20 else ORDINAL.get(n % 10, 'th')}"
            prefix = rng.choice(self.region.numbered_prefixes)
            if rng.random() < 0.5:
                return f"{number} {prefix} {ordinal} St"
            return f"{number} {ordinal} Ave {prefix}"
        return f"{number} {rng.choice(self.region.street_names)}"

    def _moved(self, price: Decimal, since: dt.date, to: dt.date) -> float:
        return float(price) * self.index(to) / self.index(since)

    # -- recorded sales --------------------------------------------------------------------
    def sales(self, count: int | None, seed: int) -> list[Sale]:
        """The region's recorded sales, dated within the last year at today's prices."""
        rng, region = self.rng, self.region
        chosen = range(len(self.comparables))
        if count is not None and count < len(self.comparables):
            chosen = sorted(rng.sample(chosen, count))
        rows = []
        skip = {"id", "price", "sale_date", "external_id", "address"}
        for i in chosen:
            c = self.comparables[i]
            sold = self.today - dt.timedelta(days=rng.randint(7, 365))
            rows.append(
                Sale(
                    environment=self.environment,
                    **_from_comparable(Sale, c, skip),
                    external_id=f"MOCK-S{seed}-{i:06d}",
                    address=f"{self.street()}, {region.city(c.zipcode)}, {region.state}",
                    price=_round(self._moved(c.price, region.sales_as_of, sold), 100),
                    sale_date=sold,
                    latitude=c.lat,
                    longitude=c.lon,
                )
            )
        return rows

    # -- one home --------------------------------------------------------------------------
    def home(self, *, owner_occupied: bool) -> tuple[Property, list[Lien], list[tuple]]:
        """A home, its liens, and its value history as (as_of, value, low, high, confidence,
        fsd) rows, oldest first (its figures are the newest)."""
        rng, region, today = self.rng, self.region, self.today
        c = self.comparables[rng.randrange(len(self.comparables))]
        value_now = _round(
            self._moved(c.price, region.sales_as_of, today) * math.exp(rng.gauss(0, 0.06)), 1000
        )
        purchased = self._purchase_date(c.year_built)
        price = _round(
            float(value_now) * self.index(purchased) / self.index_today * rng.uniform(0.95, 1.05),
            500,
        )
        fields = _from_comparable(Property, c, {"id", "street", "external_id", "value"})
        fields["living_sqft"] = max(400, int(round(c.living_sqft * rng.uniform(0.95, 1.05), -1)))
        prop = Property(
            environment=self.environment,
            **fields,
            street=self.street(),
            city=region.city(c.zipcode),
            state=region.state,
            postal_code=c.zipcode or "",
            latitude=round(c.lat + rng.uniform(-0.002, 0.002), 6),
            longitude=round(c.lon + rng.uniform(-0.002, 0.002), 6),
            owner_occupied=owner_occupied,
            purchase_date=purchased,
            purchase_price=price,
        )
        history = self._history(value_now)
        as_of, prop.value, prop.value_low, prop.value_high, prop.confidence, _ = history[-1]
        prop.valued_on = as_of
        return prop, self._liens(prop, value_now), history

    def _purchase_date(self, year_built: int | None) -> dt.date:
        rng, today = self.rng, self.today
        years = rng.choices(
            [rng.uniform(0.2, 5), rng.uniform(5, 12), rng.uniform(12, 22), rng.uniform(22, 40)],
            weights=[35, 32, 20, 13],
        )[0]
        day = today - dt.timedelta(days=int(years * 365.25))
        if year_built and day.year < year_built:
            # Bought new: within a year of being built, and not in the future.
            built = dt.date(min(year_built, today.year), 1, 1)
            day = min(built + dt.timedelta(days=rng.randint(60, 420)), today - dt.timedelta(30))
        return day

    def _history(self, value_now: Decimal) -> list[tuple]:
        rng = self.rng
        fsd = Decimal(str(round(rng.uniform(0.05, 0.13), 4)))
        confidence = confidence_of(fsd)
        days = [_month_start(self.today, k) for k in range(self.history_months, 0, -1)]
        rows = []
        for day in [*days, self.today]:
            if day == self.today:
                value = value_now
            else:
                moved = float(value_now) * self.index(day) / self.index_today
                value = _round(moved * (1 + rng.gauss(0, 0.01)), 1000)
            low = min(_round(float(value) * (1 - float(fsd)), 1000), value)
            high = max(_round(float(value) * (1 + float(fsd)), 1000), value)
            rows.append((day, value, low, high, confidence, fsd))
        return rows

    def _rate(self, year: int, extra: float = 0.0) -> Decimal:
        rate = mortgage_rate(year) + extra + self.rng.gauss(0, 0.25)
        return max(Decimal("2.250"), _round(rate * 8, 1) / 8).quantize(Decimal("0.001"))

    def _liens(self, prop: Property, value_now: Decimal) -> list[Lien]:
        rng, today = self.rng, self.today
        tenure = (today - prop.purchase_date).days / 365.25
        free_and_clear = {30: 0.85, 20: 0.5, 10: 0.2, 0: 0.07}
        chance = next(p for years, p in free_and_clear.items() if tenure >= years)
        liens: list[Lien] = []
        if rng.random() >= chance:
            first = self._first_mortgage(prop)
            if first is not None:
                liens.append(first)
        roll = rng.random()
        second = None
        if (liens and roll < 0.10) or (not liens and roll < 0.04):
            second = self._heloc(prop, value_now, liens)
        elif liens and roll < 0.13 and liens[0].origination_date == prop.purchase_date:
            second = self._piggyback(prop, liens[0])
        if second is not None:
            liens.append(second)
        for position, lien in enumerate(liens, start=1):
            lien.position = position
        return liens

    def _lien(self, prop, kind, amount, rate, term, originated, balance=None) -> Lien | None:
        as_of = max(self.statement, originated)
        if balance is None:
            balance = amortized(amount, rate, term, _months_between(originated, as_of))
        if balance <= 0:
            return None  # paid off
        return Lien(
            environment=self.environment,
            property=prop,
            kind=kind,
            original_amount=amount,
            rate=rate,
            term_months=term,
            origination_date=originated,
            balance=balance,
            balance_as_of=as_of,
        )

    def _first_mortgage(self, prop: Property) -> Lien | None:
        rng = self.rng
        price, bought = prop.purchase_price, prop.purchase_date
        down = rng.choices([0.20, 0.10, 0.05, 0.035, 0.30], weights=[50, 20, 10, 6, 14])[0]
        term = 360 if rng.random() < 0.88 else 180
        amount = _round(float(price) * (1 - down), 100)
        originated, rate = bought, self._rate(bought.year)
        if bought.year <= 2019 and self.refinance_months and rng.random() < 0.4:
            # Refinanced when rates fell (2020-2021), by the data's day: what was owed then,
            # sometimes more.
            originated = _month_start(REFINANCE_FROM, -rng.randrange(self.refinance_months))
            owed = amortized(amount, rate, term, _months_between(bought, originated))
            cap = float(price) * self.index(originated) / self.index(bought) * 0.8
            amount = _round(min(float(owed) * rng.uniform(1.0, 1.25), cap), 100)
            term, rate, down = 360, self._rate(originated.year), 0.2
        lien = self._lien(prop, "first_mortgage", amount, rate, term, originated)
        if lien is not None and down < 0.2 and lien.balance / price > Decimal("0.78"):
            lien.pmi_monthly = (amount * Decimal(str(rng.uniform(0.003, 0.008))) / 12).quantize(
                CENT
            )
        return lien

    def _heloc(self, prop: Property, value_now: Decimal, liens: list[Lien]) -> Lien | None:
        rng, today = self.rng, self.today
        earliest = max(prop.purchase_date + dt.timedelta(days=365), today - dt.timedelta(3650))
        latest = today - dt.timedelta(days=60)
        if earliest >= latest:
            return None
        opened = earliest + dt.timedelta(days=rng.randint(0, (latest - earliest).days))
        owed = sum((lien.balance for lien in liens), Decimal(0))
        value_then = float(value_now) * self.index(opened) / self.index_today
        limit = _round(min(0.85 * value_then - float(owed), 250_000), 5000)
        if limit < 15_000:
            return None
        drawn = _round(float(limit) * rng.uniform(0.1, 0.9), 100)
        margin = _round(rng.uniform(-0.5, 1.5) * 8, 1) / 8
        rate = max(Decimal("3.000"), self.prime + margin).quantize(Decimal("0.001"))
        return self._lien(prop, "heloc", limit, rate, 360, opened, balance=drawn)

    def _piggyback(self, prop: Property, first: Lien) -> Lien | None:
        """An 80-10-10 purchase: a second mortgage of a tenth of the price, at a higher rate."""
        amount = _round(float(prop.purchase_price) * 0.10, 100)
        rate = (first.rate + Decimal("1.5")).quantize(Decimal("0.001"))
        return self._lien(prop, "second_mortgage", amount, rate, 180, prop.purchase_date)
