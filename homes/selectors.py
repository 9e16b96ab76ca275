"""Reads about homes, always scoped to one environment.

Display filters (HomeSettings) decide whether a figure is shown to a member, never what it
is: the stored figures stay the same, `Visibility` says what may be shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from homes.finance.equity import LienTerms, borrowing_power, current_balance
from homes.models import HomeSettings, Lien, MemberOffer, OfferMatch, Property, Valuation


def home_settings(environment) -> HomeSettings:
    """The environment's settings, or the defaults (unsaved) when none were saved yet."""
    return HomeSettings.objects.filter(environment=environment).first() or HomeSettings(
        environment=environment
    )


@dataclass(frozen=True)
class Visibility:
    show_value: bool
    reason: str = ""


def visibility(settings: HomeSettings, prop: Property | None, today: date) -> Visibility:
    """Whether the institution's display filters let the member see this home's figures."""
    if prop is None or prop.value is None:
        return Visibility(False, "We don't have a value for your home yet.")
    if settings.owner_occupied_only and not prop.owner_occupied:
        return Visibility(False, "Estimates are shown for homes you live in.")
    if (prop.confidence or 0) < settings.min_confidence:
        return Visibility(False, "We can't estimate your home's value confidently enough yet.")
    if settings.min_years_owned and prop.purchase_date:
        owned_days = (today - prop.purchase_date).days
        if owned_days < settings.min_years_owned * 365.25:
            return Visibility(False, "Estimates are shown once you've owned your home a while.")
    year = prop.year_built
    if year and settings.year_built_min and year < settings.year_built_min:
        return Visibility(False, "We can't estimate homes of this age yet.")
    if year and settings.year_built_max and year > settings.year_built_max:
        return Visibility(False, "We can't estimate homes this new yet.")
    return Visibility(True)


@dataclass
class LienLine:
    label: str
    balance: Decimal
    rate: Decimal


@dataclass
class BorrowingFormula:
    max_cltv: Decimal
    min_line: Decimal | None
    max_line: Decimal | None
    product_title: str

    def amount(self, value: Decimal, liens: Decimal) -> Decimal:
        return borrowing_power(value, liens, self.max_cltv, self.min_line, self.max_line)


@dataclass
class Dashboard:
    settings: HomeSettings
    property: Property | None
    visible: Visibility
    liens: list[LienLine] = field(default_factory=list)
    history: list[tuple[date, Decimal]] = field(default_factory=list)
    matches: list[OfferMatch] = field(default_factory=list)
    states: dict[int, MemberOffer] = field(default_factory=dict)
    formula: BorrowingFormula | None = None


def _history(rows) -> list[tuple[date, Decimal]]:
    by_day: dict[date, Decimal] = {}
    for as_of, value in rows:  # ordered by as_of, id: the last of a day wins
        by_day[as_of] = value
    return sorted(by_day.items())


def dashboard(environment, member, *, today: date | None = None) -> Dashboard:
    """Everything the member dashboard shows, in a fixed number of queries."""
    today = today or timezone.localdate()
    settings = home_settings(environment)
    prop = Property.objects.filter(environment=environment, member=member).order_by("pk").first()
    board = Dashboard(settings, prop, visibility(settings, prop, today))
    if prop is None:
        return board
    for lien in Lien.objects.filter(property=prop).order_by("position"):
        terms = LienTerms(
            lien.position, lien.kind, lien.original_amount, lien.rate, lien.term_months,
            lien.origination_date, lien.balance, lien.balance_as_of, lien.pmi_monthly,
        )  # fmt: skip
        board.liens.append(
            LienLine(lien.get_kind_display(), current_balance(terms, today), lien.rate)
        )
    board.history = _history(
        Valuation.objects.filter(property=prop)
        .order_by("as_of", "id")
        .values_list("as_of", "value")
    )
    board.matches = list(
        OfferMatch.objects.filter(member=member, property=prop)
        .select_related("product")
        .order_by("rank")
    )
    board.states = {
        s.product_id: s for s in MemberOffer.objects.filter(environment=environment, member=member)
    }
    lines = [m for m in board.matches if m.product.is_line]
    best = max(lines, key=lambda m: m.amount or 0) if lines else None
    if best is not None:
        p = best.product
        board.formula = BorrowingFormula(p.max_cltv, p.min_amount, p.max_amount, p.title)
    else:
        board.formula = BorrowingFormula(settings.default_max_cltv, None, None, "")
    return board


# -- the summary other apps (notifications) build messages from ---------------------------


@dataclass(frozen=True)
class HomeSummary:
    member_id: int
    property_id: int
    address: str
    value: Decimal | None
    value_low: Decimal | None
    value_high: Decimal | None
    as_of: date | None
    previous_value: Decimal | None  # latest valuation as of at least 28 days before `as_of`
    change_pct: Decimal | None  # (value - previous_value) / previous_value * 100, 1 dp
    equity: Decimal | None
    borrowing_power: Decimal | None
    top_offer_title: str | None
    top_offer_path: str | None  # path on the member host, e.g. "/offers/12/"
    member_rate: Decimal | None  # first-lien rate (percent), for the refinance alert


PREVIOUS_GAP = timedelta(days=28)


def home_summaries(*, environment, member_ids) -> dict[int, HomeSummary]:
    """Each member's home in brief (first property by id), in a fixed number of queries.

    Figures the institution's display filters hide are None, as on the member pages.
    """
    member_ids = list(member_ids)
    settings = home_settings(environment)
    today = timezone.localdate()
    props: dict[int, Property] = {}
    for prop in Property.objects.filter(environment=environment, member_id__in=member_ids).order_by(
        "pk"
    ):
        props.setdefault(prop.member_id, prop)
    property_ids = [p.pk for p in props.values()]
    history: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for pid, as_of, value in (
        Valuation.objects.filter(environment=environment, property_id__in=property_ids)
        .order_by("property_id", "as_of", "id")
        .values_list("property_id", "as_of", "value")
    ):
        history[pid].append((as_of, value))
    first_rate: dict[int, Decimal] = {}
    for pid, rate in (
        Lien.objects.filter(environment=environment, property_id__in=property_ids)
        .order_by("property_id", "position")
        .values_list("property_id", "rate")
    ):
        first_rate.setdefault(pid, rate)
    top: dict[int, tuple[str, int]] = {}
    for pid, title, product_id in OfferMatch.objects.filter(
        environment=environment, property_id__in=property_ids, rank=1
    ).values_list("property_id", "product__title", "product_id"):
        top[pid] = (title, product_id)

    summaries = {}
    for member_id, prop in props.items():
        shown = visibility(settings, prop, today).show_value
        previous = None
        if shown and prop.valued_on:
            cutoff = prop.valued_on - PREVIOUS_GAP
            earlier = [v for d, v in _history(history[prop.pk]) if d <= cutoff]
            previous = earlier[-1] if earlier else None
        change = None
        if previous:
            change = ((prop.value - previous) / previous * 100).quantize(
                Decimal("0.1"), rounding=ROUND_HALF_UP
            )
        offer = top.get(prop.pk)
        summaries[member_id] = HomeSummary(
            member_id=member_id,
            property_id=prop.pk,
            address=prop.address,
            value=prop.value if shown else None,
            value_low=prop.value_low if shown else None,
            value_high=prop.value_high if shown else None,
            as_of=prop.valued_on if shown else None,
            previous_value=previous,
            change_pct=change,
            equity=prop.equity if shown else None,
            borrowing_power=prop.borrowing_power if shown else None,
            top_offer_title=offer[0] if offer else None,
            top_offer_path=f"/offers/{offer[1]}/" if offer else None,
            member_rate=first_rate.get(prop.pk),
        )
    return summaries
