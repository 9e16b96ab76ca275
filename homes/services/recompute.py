"""Equity and offer matches, recomputed in bulk whenever a valuation, lien or product changes.

Pages never compute these: they read what is stored on Property and OfferMatch.

Batches work on plain rows (`HomeRow`), not model instances: a refresh of a whole
environment reads, computes and writes its homes in large batches without building a
model object per home, per lien or per match (homes.services.store writes them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from homes.finance.equity import (
    LienTerms,
    borrowing_power,
    current_balance,
    equity_of,
    months_between,
    scheduled_payment,
)
from homes.finance.matching import HomeState, LienState, Match, ProductTerms, rank_matches
from homes.models import HomeSettings, Lien, OfferProduct, Property
from homes.selectors import home_settings
from homes.services.store import MatchRow, ValuationRow, batch_store
from institutions import events

VALUE_FIELDS = ["value", "value_low", "value_high", "confidence", "valued_on"]
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

#: The marks of work a sync asked for (homes.services.sync), cleared by the work.
REQUEST_FIELDS = ("valuation_requested_at", "recompute_requested_at")

_READ = (
    "id", "member_id", "member__is_test", "owner_occupied", "value", "value_low",
    "value_high", "confidence", "valued_on", "latitude", "longitude", "living_sqft",
    "lot_sqft", "bedrooms", "bathrooms", "year_built", "grade", "condition", "postal_code",
    *REQUEST_FIELDS,
)  # fmt: skip
_ATTRS = ("pk", *(name.replace("member__", "member_") for name in _READ[1:]))


class HomeRow:
    """The columns of a property that a batch reads and writes.

    Valuation providers read `pk` and the descriptors as they would from a Property; the
    figures computed here are written back by the store.
    """

    __slots__ = (*_ATTRS, *COMPUTED_FIELDS)

    def __init__(self, values: tuple) -> None:
        for name, value in zip(_ATTRS, values, strict=True):
            setattr(self, name, value)
        self.lien_balance = self.equity = self.ltv = self.cltv = None
        self.borrowing_power = self.computed_at = None

    @property
    def member(self) -> MemberRef | None:
        """What events need of the owner (its id and test-cohort flag), without a query."""
        if self.member_id is None:
            return None
        return MemberRef(self.member_id, bool(self.member_is_test))


class MemberRef(NamedTuple):
    pk: int
    is_test: bool


def home_rows(
    environment,
    *,
    after: int = 0,
    upto: int | None = None,
    ids: Iterable[int] | None = None,
    computed_before: datetime | None = None,
    waiting: bool = False,
    limit: int | None = None,
) -> list[HomeRow]:
    """The environment's homes as rows, in id order: after < id <= upto, or these ids;
    with `computed_before`, only those last computed before then (or never); `waiting`,
    only those marked as waiting for a valuation."""
    qs = Property.objects.filter(environment=environment, pk__gt=after)
    if upto is not None:
        qs = qs.filter(pk__lte=upto)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    if computed_before is not None:
        qs = qs.filter(Q(computed_at__lt=computed_before) | Q(computed_at__isnull=True))
    if waiting:
        qs = qs.filter(valuation_requested_at__isnull=False)
    qs = qs.order_by("pk").values_list(*_READ)
    if limit is not None:
        qs = qs[:limit]
    return [HomeRow(values) for values in qs]


def lien_terms_by_property(property_ids: Iterable[int]) -> dict[int, list[LienTerms]]:
    ids = sorted(property_ids)
    if not ids:
        return {}
    liens = Lien.objects.all()
    if 2 * len(ids) >= ids[-1] - ids[0] + 1:
        # Dense ids (a batch of consecutive homes): a range is one cheap index scan.
        liens = liens.filter(property_id__gte=ids[0], property_id__lte=ids[-1])
    else:
        liens = liens.filter(property_id__in=ids)
    wanted = set(ids)
    grouped: dict[int, list[LienTerms]] = defaultdict(list)
    for row in liens.values_list(*LIEN_FIELDS):
        if row[0] in wanted:
            grouped[row[0]].append(LienTerms(*row[1:]))
    return grouped


def _lien_state(lien: LienTerms, today: date) -> LienState:
    made = months_between(lien.origination_date, today)
    payment = scheduled_payment(lien)
    return LienState(
        position=lien.position,
        balance=current_balance(lien, today, payment),
        rate=lien.rate,
        payment=payment,
        pmi_monthly=lien.pmi_monthly,
        remaining_months=max(lien.term_months - made, 0),
        kind=lien.kind,
    )


class Recomputer:
    """Holds what a batch needs (settings, products) so a refresh loads them once."""

    def __init__(self, environment, *, today: date | None = None, settings=None, products=None):
        self.environment = environment
        self.today = today or environment.institution.today()
        self.settings: HomeSettings = settings or home_settings(environment)
        if products is None:
            products = list(OfferProduct.objects.filter(environment=environment, is_active=True))
        self.products = [ProductTerms.of(p) for p in products]
        self.kinds = {p.id: p.kind for p in self.products}
        self.has_line_products = any(p.kind in OfferProduct.LINE_KINDS for p in products)

    def compute(self, home, liens: list[LienTerms]) -> list[Match]:
        """Set the home's computed figures (a HomeRow or a Property); return its eligible
        offers, best first."""
        states = tuple(_lien_state(lien, self.today) for lien in liens)
        home.lien_balance = sum((s.balance for s in states), Decimal(0))
        if home.value is None:
            home.equity = home.ltv = home.cltv = home.borrowing_power = None
            return []
        eq = equity_of(home.value, [(s.position, s.balance) for s in states])
        home.lien_balance, home.equity, home.ltv, home.cltv = (
            eq.lien_balance,
            eq.equity,
            eq.ltv,
            eq.cltv,
        )
        state = HomeState(
            value=home.value,
            confidence=home.confidence or 0,
            owner_occupied=home.owner_occupied,
            liens=states,
            lien_balance=eq.lien_balance,
            equity=eq.equity,
            ltv=eq.ltv,
            cltv=eq.cltv,
        )
        matches = rank_matches(
            state,
            self.products,
            prime_rate=self.settings.prime_rate,
            line_score_rate=self.settings.line_score_rate,
        )
        lines = [
            m.amount
            for m in matches
            if m.benefit_kind == "available_line" and self.kinds[m.product_id] != "cash_out_refi"
        ]
        if lines:
            home.borrowing_power = max(lines)
        elif self.has_line_products:
            home.borrowing_power = Decimal(0)  # line products exist; this home qualifies for none
        else:
            home.borrowing_power = borrowing_power(
                home.value, eq.lien_balance, self.settings.default_max_cltv
            )
        return matches

    def apply_rows(
        self,
        rows: list[HomeRow],
        *,
        fields: Iterable[str] = COMPUTED_FIELDS,
        valuations: list[ValuationRow] = (),
    ) -> int:
        """Compute and store equity and matches of these rows with their `fields` and new
        `valuations` (one transaction); new matches are emitted as offer_matched."""
        if not rows:
            return 0
        liens = lien_terms_by_property([row.pk for row in rows])
        now = timezone.now()
        matches: list[MatchRow] = []
        for row in rows:
            row.computed_at = now
            ranked = self.compute(row, liens.get(row.pk, ()))
            if row.member_id is None:
                continue
            matches.extend(
                MatchRow(
                    row.member_id,
                    row.pk,
                    m.product_id,
                    rank,
                    m.benefit_kind,
                    m.benefit,
                    m.score,
                    m.amount,
                    m.rate,
                    m.monthly_payment,
                    now,
                )
                for rank, m in enumerate(ranked, start=1)
            )
        fields = list(fields)
        with transaction.atomic():
            before = batch_store(
                environment=self.environment,
                rows=rows,
                fields=fields,
                valuations=valuations,
                matches=matches,
            )
            # A revaluation (homes.services.valuations) writes the value too.
            done = REQUEST_FIELDS if "value" in fields else REQUEST_FIELDS[1:]
            _requests_clear(self.environment, rows, done)
            self._emit_new_matches(rows, matches, before)
        return len(rows)

    def apply(self, properties: list[Property]) -> int:
        """Compute and store equity and matches of these properties (as saved), and set the
        figures on the instances too."""
        if not properties:
            return 0
        rows = home_rows(self.environment, ids=[p.pk for p in properties])
        done = self.apply_rows(rows)
        copy_back(rows, properties, COMPUTED_FIELDS)
        return done

    def _emit_new_matches(self, rows, matches: list[MatchRow], before) -> None:
        """An offer a member was not matched to before is news (journeys start from it)."""
        owners = {row.pk: row.member for row in rows}
        events.emit_many(
            environment=self.environment,
            items=[
                (
                    "offer_matched",
                    owners[m.property_id],
                    {"offer_id": m.product_id, "offer_kind": self.kinds[m.product_id]},
                )
                for m in matches
                if (m.property_id, m.product_id) not in before
            ],
        )


def _requests_clear(environment, rows: list[HomeRow], names: Iterable[str]) -> None:
    """The work these marks asked for is done with the rows as read: clear each mark unless
    a sync marked the home again since (its data came after this read; it waits on)."""
    for name in names:
        by_mark: dict[datetime, list[int]] = defaultdict(list)
        for row in rows:
            mark = getattr(row, name)
            if mark is not None:
                by_mark[mark].append(row.pk)
        # One statement per marking sync (usually one for the whole batch).
        for mark, ids in by_mark.items():
            Property.objects.filter(environment=environment, pk__in=ids, **{name: mark}).update(
                **{name: None}
            )


def copy_back(rows: list[HomeRow], properties: list[Property], fields: Iterable[str]) -> None:
    """Set what was stored for the rows on the model instances a caller holds."""
    by_pk = {row.pk: row for row in rows}
    for prop in properties:
        row = by_pk.get(prop.pk)
        if row is not None:
            for name in fields:
                setattr(prop, name, getattr(row, name))


def properties_recompute(
    *,
    environment,
    property_ids: Iterable[int] | None = None,
    computed_before: datetime | None = None,
    today: date | None = None,
) -> int:
    """Recompute equity and matches of some (or all) properties of an environment; with
    `computed_before`, of those last computed before then. Balances are amortized to
    `today` (default: today)."""
    recomputer = Recomputer(environment, today=today)
    ids = None if property_ids is None else list(property_ids)
    done, cursor = 0, 0
    while True:
        batch = home_rows(
            environment, after=cursor, ids=ids, computed_before=computed_before, limit=BATCH
        )
        if not batch:
            return done
        done += recomputer.apply_rows(batch)
        cursor = batch[-1].pk


def properties_recompute_stale(*, environment, today: date | None = None) -> int:
    """Recompute the homes not computed yet today (the institution's day, from its
    midnight). Lien balances amortize month by month (homes.finance.equity.current_balance),
    so a home's stored equity, borrowing power and offers would drift from its lien table,
    which the dashboard shows amortized to today; the beat task homes.equity_tick calls this
    every hour."""
    institution = environment.institution
    today = today or institution.today()
    midnight = datetime.combine(today, time.min, tzinfo=institution.tz)
    return properties_recompute(environment=environment, computed_before=midnight, today=today)
