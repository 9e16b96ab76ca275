"""Demo homes: recorded sales from the King County CSV, and for each demo member a home
drawn from it, with a mortgage, a value history and the institution's offer products."""

from __future__ import annotations

import datetime
import os
import random
from decimal import Decimal
from pathlib import Path

from homes.demo import demo_members_of
from homes.finance.equity import balance_after, monthly_payment
from homes.models import HomeSettings, Lien, OfferProduct, Property, Sale, Valuation
from homes.services import offer_product_save, properties_recompute
from homes.services.valuations import Revaluer
from homes.valuation.estimator import KING_COUNTY_SALES_CSV, load_king_county_csv
from institutions.demo import DemoReport
from institutions.models import Institution
from institutions.tenancy import environment_scope

STREETS = ["Maple", "Cedar", "Alder", "Madrona", "Union", "Pike", "Spruce", "Lake", "Hill"]
KINDS = ["St", "Ave", "Pl", "Way", "Ct"]

PRODUCTS = [
    {
        "name": "HELOC",
        "kind": "heloc",
        "title": "Home equity line of credit",
        "summary": "Borrow what you need, when you need it, up to 80% of your home's value "
        "at prime minus 0.25% for the first 12 months.",
        "rate_type": "indexed",
        "margin": Decimal("-0.250"),
        "rate_floor": Decimal("4.000"),
        "rate_cap": Decimal("18.000"),
        "max_cltv": Decimal("0.8000"),
        "min_amount": Decimal("10000"),
        "max_amount": Decimal("250000"),
        "term_months": 240,
        "max_existing_liens": 1,
        "min_confidence": 50,
        "disclosures": "The APR is variable, based on the Wall Street Journal prime rate, with "
        "a maximum of 18%. Introductory rate for 12 months, then prime + 0.50%. 10-year draw "
        "period, then a 20-year repayment term. No annual fee; property insurance required.",
        "display_order": 1,
    },
    {
        "name": "Home equity loan",
        "kind": "home_equity_loan",
        "title": "Fixed-rate home equity loan",
        "summary": "One lump sum at a fixed rate you can plan around.",
        "rate_type": "fixed",
        "apr": Decimal("7.490"),
        "max_cltv": Decimal("0.8500"),
        "min_amount": Decimal("15000"),
        "max_amount": Decimal("200000"),
        "term_months": 180,
        "max_existing_liens": 1,
        "disclosures": "APR 7.49%, fixed for the 15-year term. Repayment in 180 monthly payments.",
        "display_order": 2,
    },
    {
        "name": "Rate-and-term refinance",
        "kind": "rate_term_refi",
        "title": "Lower your mortgage rate",
        "summary": "Refinance into a lower rate and keep more each month.",
        "rate_type": "fixed",
        "apr": Decimal("5.990"),
        "max_cltv": Decimal("0.9000"),
        "min_amount": Decimal("50000"),
        "term_months": 360,
        "min_rate_gap_bps": 50,
        "disclosures": "APR 5.99% for a 30-year fixed loan; repayment in 360 monthly payments. "
        "Closing costs apply.",
        "display_order": 3,
    },
    {
        "name": "PMI removal",
        "kind": "pmi_removal",
        "title": "Stop paying mortgage insurance",
        "summary": "Your home may be worth enough to drop private mortgage insurance.",
        "rate_type": "fixed",
        "apr": Decimal("0"),
        "max_cltv": Decimal("0.8000"),
        "term_months": 1,
        "max_existing_liens": 2,
        "disclosures": "Subject to an appraisal and the terms of your mortgage.",
        "display_order": 4,
    },
]


def sales_csv_path() -> Path:
    configured = os.environ.get("CHIMNEY_SALES_CSV")
    if configured:
        return Path(configured)
    return KING_COUNTY_SALES_CSV


def _load_sales(environment, comparables) -> None:
    Sale.objects.bulk_create(
        [
            Sale(
                environment=environment,
                external_id=f"KC{c.id}",
                price=c.price,
                latitude=c.lat,
                longitude=c.lon,
                living_sqft=c.living_sqft,
                lot_sqft=c.lot_sqft,
                bedrooms=c.bedrooms,
                bathrooms=c.bathrooms,
                year_built=c.year_built,
                grade=c.grade,
                condition=c.condition,
                view=c.view,
                waterfront=c.waterfront,
                floors=c.floors,
                yr_renovated=c.yr_renovated,
                sqft_basement=c.sqft_basement,
                sqft_living15=c.sqft_living15,
                sqft_lot15=c.sqft_lot15,
                zipcode=c.zipcode or "",
            )
            for c in comparables
        ],
        batch_size=2000,
    )


def _products(environment) -> None:
    """The demo's offers, once: an environment that has offers keeps those staff made."""
    if OfferProduct.objects.exists():
        return
    for spec in PRODUCTS:
        offer_product_save(
            environment=environment,
            product=OfferProduct(environment=environment, **spec),
            actor_label="demo",
        )


def _homes(environment, members, comparables, rng, today) -> list[Property]:
    homes = []
    for i, member in enumerate(members):
        c = comparables[rng.randrange(len(comparables))]
        years = rng.randint(3, 12)
        purchase = today.replace(year=today.year - years, day=1)
        prop = Property.objects.create(
            environment=environment, member=member, external_id=f"H{member.external_id}",
            street=f"{rng.randint(100, 9999)} {rng.choice(STREETS)} {rng.choice(KINDS)}",
            city="Seattle", state="WA", postal_code=c.zipcode or "", latitude=c.lat,
            longitude=c.lon, bedrooms=c.bedrooms, bathrooms=Decimal(str(c.bathrooms)),
            living_sqft=c.living_sqft, lot_sqft=c.lot_sqft, year_built=c.year_built,
            grade=c.grade, condition=c.condition, owner_occupied=i % 7 != 6,
            purchase_date=purchase, purchase_price=(c.price * Decimal("0.75")).quantize(1),
        )  # fmt: skip
        down = Decimal("0.10") if i % 4 == 0 else Decimal("0.20")
        amount = (prop.purchase_price * (1 - down)).quantize(Decimal(1))
        rate = Decimal(rng.choice(["3.250", "4.125", "6.500", "7.250"]))
        known = today.replace(year=today.year - 1, day=1)
        made = (known.year - purchase.year) * 12 + known.month - purchase.month
        balance = balance_after(amount, rate, monthly_payment(amount, rate, 360), made)
        Lien.objects.create(
            environment=environment, property=prop, position=1, kind="first_mortgage",
            original_amount=amount, rate=rate, term_months=360, origination_date=purchase,
            balance=balance, balance_as_of=known,
            pmi_monthly=Decimal("95.00") if down < Decimal("0.2") else Decimal(0),
        )  # fmt: skip
        homes.append(prop)
    return homes


def _history(environment, homes, rng, today) -> None:
    rows = []
    for prop in homes:
        if prop.value is None:
            continue
        yearly = Decimal(str(rng.uniform(0.02, 0.07)))
        for months in range(1, 25):
            as_of = (today.replace(day=1) - datetime.timedelta(days=30 * months)).replace(day=1)
            noise = Decimal(str(rng.uniform(-0.01, 0.01)))
            value = (prop.value * (1 - yearly * months / 12 + noise) / 1000).quantize(1) * 1000
            fsd = Decimal("0.0800")
            rows.append(
                Valuation(
                    environment=environment,
                    property=prop,
                    provider="comparable",
                    value=value,
                    low=value * (1 - fsd),
                    high=value * (1 + fsd),
                    confidence=78,
                    fsd=fsd,
                    as_of=as_of,
                )
            )
    Valuation.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


def demo_homes(institution: Institution, report: DemoReport) -> None:
    path = sales_csv_path()
    comparables = load_king_county_csv(path) if path.exists() else []
    if not comparables:
        report.add(
            f"  homes: no sales CSV at {path} (set CHIMNEY_SALES_CSV); mock values in staging only"
        )
    rng = random.Random(f"homes-{institution.slug}")  # noqa: S311  (reproducible demo data)
    today = institution.today()
    for environment in institution.environments.all():
        with environment_scope(environment):
            if not HomeSettings.objects.exists():
                # The same order in both environments, as a release would make it: production
                # skips the mock (made-up values are for staging only, see providers_for).
                order = ["comparable", "vendor", "mock"] if comparables else ["vendor", "mock"]
                HomeSettings.objects.create(environment=environment, provider_order=order)
            if comparables and not Sale.objects.exists():
                _load_sales(environment, comparables)
            _products(environment)
            # Homes for the demo's own members, once: members who came in since get none.
            members = [] if Property.objects.exists() else list(demo_members_of(environment))
            if members and comparables:
                homes = _homes(environment, members, comparables, rng, today)
                Revaluer(environment, as_of=today).revalue(homes)
                _history(environment, homes, rng, today)
            elif members:
                homes = [
                    Property.objects.create(
                        environment=environment,
                        member=m,
                        street=f"{100 + m.pk} Main St",
                        living_sqft=1800,
                    )
                    for m in members
                ]
                Revaluer(environment, as_of=today).revalue(homes)
            properties_recompute(environment=environment)
            report.add(
                f"  homes ({environment.kind}): {Property.objects.count()} properties, "
                f"{Sale.objects.count():,} recorded sales, {OfferProduct.objects.count()} offers"
            )
