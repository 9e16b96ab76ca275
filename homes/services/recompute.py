"""Equity and offer matches, recomputed in bulk whenever a valuation, lien or product changes.

Pages never compute these: they read what is stored on Property and OfferMatch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from homes.finance.equity import (
    LienTerms,
    borrowing_power,
    current_balance,
    equity_of,
    months_between,
    scheduled_payment,
)
from homes.finance.matching import HomeState, LienState, ProductTerms, rank_matches
from homes.models import HomeSettings, Lien, Member, OfferMatch, OfferProduct, Property
from homes.selectors import home_settings
from homes.services.bulk import fast_bulk_update
from institutions import events

COMPUTED_FIELDS = [
    "lien_balance",
    "equity",
    "ltv",
    "cltv",
    "borrowing_power",
    "computed_at",
]
LIEN_FIELDS = (
    "property_id", "position", "kind", "original_amount", "rate", "term_months",
    "origination_date", "balance", "balance_as_of", "pmi_monthly",
)  # fmt: skip
BATCH = 2000


def lien_terms_by_property(property_ids: Iterable[int]) -> dict[int, list[LienTerms]]:
    grouped: dict[int, list[LienTerms]] = defaultdict(list)
    for row in Lien.objects.filter(property_id__in=list(property_ids)).values_list(*LIEN_FIELDS):
        grouped[row[0]].append(LienTerms(*row[1:]))
    return grouped


def _lien_state(lien: LienTerms, today: date) -> LienState:
    made = months_between(lien.origination_date, today)
    return LienState(
        position=lien.position,
        balance=current_balance(lien, today),
        rate=lien.rate,
        payment=scheduled_payment(lien),
        pmi_monthly=lien.pmi_monthly,
        remaining_months=max(lien.term_months - made, 0),
    )


class Recomputer:
    """Holds what a batch needs (settings, products) so a refresh loads them once."""

    def __init__(self, environment, *, today: date | None = None, settings=None, products=None):
        self.environment = environment
        self.today = today or timezone.localdate()
        self.settings: HomeSettings = settings or home_settings(environment)
        if products is None:
            products = list(OfferProduct.objects.filter(environment=environment, is_active=True))
        self.products = [ProductTerms.of(p) for p in products]
        self.has_line_products = any(p.kind in ("heloc", "home_equity_loan") for p in products)

    def compute(self, prop: Property, liens: list[LienTerms]) -> list[OfferMatch]:
        """Set the property's computed figures; return its matches (unsaved), best first."""
        states = tuple(_lien_state(lien, self.today) for lien in liens)
        total = sum((s.balance for s in states), Decimal(0))
        prop.lien_balance = total
        prop.computed_at = timezone.now()
        if prop.value is None:
            prop.equity = prop.ltv = prop.cltv = prop.borrowing_power = None
            return []
        eq = equity_of(prop.value, [(s.position, s.balance) for s in states])
        prop.lien_balance, prop.equity, prop.ltv, prop.cltv = (
            eq.lien_balance,
            eq.equity,
            eq.ltv,
            eq.cltv,
        )
        home = HomeState(
            value=prop.value,
            confidence=prop.confidence or 0,
            owner_occupied=prop.owner_occupied,
            liens=states,
            lien_balance=eq.lien_balance,
            equity=eq.equity,
            ltv=eq.ltv,
            cltv=eq.cltv,
        )
        matches = rank_matches(
            home,
            self.products,
            prime_rate=self.settings.prime_rate,
            line_score_rate=self.settings.line_score_rate,
        )
        lines = [
            m.amount
            for m in matches
            if m.benefit_kind == "available_line" and self._kind(m.product_id) != "cash_out_refi"
        ]
        if lines:
            prop.borrowing_power = max(lines)
        elif self.has_line_products:
            prop.borrowing_power = Decimal(0)  # line products exist; this home qualifies for none
        else:
            prop.borrowing_power = borrowing_power(
                prop.value, eq.lien_balance, self.settings.default_max_cltv
            )
        if prop.member_id is None:
            return []
        now = prop.computed_at
        return [
            OfferMatch(
                environment=self.environment,
                member_id=prop.member_id,
                property=prop,
                product_id=m.product_id,
                rank=rank,
                benefit_kind=m.benefit_kind,
                benefit=m.benefit,
                score=m.score,
                amount=m.amount,
                rate=m.rate,
                monthly_payment=m.monthly_payment,
                computed_at=now,
            )
            for rank, m in enumerate(matches, start=1)
        ]

    def _kind(self, product_id: int) -> str:
        for p in self.products:
            if p.id == product_id:
                return p.kind
        return ""

    def apply(self, properties: list[Property], extra_fields: Iterable[str] = ()) -> int:
        """Compute and store equity and matches of these properties (bulk; one transaction)."""
        if not properties:
            return 0
        ids = [p.pk for p in properties]
        liens = lien_terms_by_property(ids)
        matches: list[OfferMatch] = []
        for prop in properties:
            matches.extend(self.compute(prop, liens.get(prop.pk, [])))
        with transaction.atomic():
            fast_bulk_update(properties, [*extra_fields, *COMPUTED_FIELDS])
            existing = OfferMatch.objects.filter(environment=self.environment, property_id__in=ids)
            before = set(existing.values_list("property_id", "product_id"))
            existing.delete()
            OfferMatch.objects.bulk_create(matches, batch_size=BATCH)
            self._emit_new_matches(properties, matches, before)
        return len(properties)

    def _emit_new_matches(self, properties, matches, before) -> None:
        """An offer a member was not matched to before is news (journeys start from it)."""
        fresh = [m for m in matches if (m.property_id, m.product_id) not in before]
        if not fresh:
            return
        owner = {p.pk: p.member_id for p in properties}
        members = Member.objects.in_bulk({owner[m.property_id] for m in fresh} - {None})
        events.emit_many(
            environment=self.environment,
            items=[
                (
                    "offer_matched",
                    members[owner[m.property_id]],
                    {"offer_id": m.product_id, "offer_kind": self._kind(m.product_id)},
                )
                for m in fresh
                if owner.get(m.property_id) in members
            ],
        )


def properties_recompute(*, environment, property_ids: Iterable[int] | None = None) -> int:
    """Recompute equity and matches of some (or all) properties of an environment."""
    recomputer = Recomputer(environment)
    qs = Property.objects.filter(environment=environment).order_by("pk")
    if property_ids is not None:
        qs = qs.filter(pk__in=list(property_ids))
    done, cursor = 0, 0
    while True:
        batch = list(qs.filter(pk__gt=cursor)[:BATCH])
        if not batch:
            return done
        done += recomputer.apply(batch)
        cursor = batch[-1].pk
