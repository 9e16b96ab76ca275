"""Reads about homes, always scoped to one environment.

Display filters (HomeSettings) decide whether a figure is shown to a member, never what it
is: the stored figures stay the same, `Visibility` says what may be shown.
"""

from __future__ import annotations

import functools
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cached_property

from django.db import connection
from django.utils import timezone

from homes.charts import Chart, value_chart
from homes.finance.equity import LienTerms, borrowing_power, current_balance
from homes.models import (
    Appointment,
    HomeSettings,
    Lien,
    Member,
    MemberOffer,
    OfferMatch,
    OfferProduct,
    Property,
    Valuation,
)
from institutions import page_cache
from institutions.sql import ModelColumns

SETTINGS_CACHE_SECONDS = 300


def home_settings(environment) -> HomeSettings:
    """The environment's settings, or the defaults (unsaved) when none were saved yet."""
    return HomeSettings.objects.filter(environment=environment).first() or HomeSettings(
        environment=environment
    )


def home_settings_cache_key(environment_id: int) -> str:
    return f"homes:settings:{environment_id}"


#: How long a cards token lives unchanged (a card itself is cached for a day at most).
CARDS_TOKEN_SECONDS = 7 * 24 * 3600


def dashboard_cards_key(environment_id: int) -> str:
    """The cache key of the environment's cards token (see Dashboard.card_version)."""
    return f"homes:cards:{environment_id}"


def dashboard_cards_token(environment) -> str:
    """The environment's current cards token: replaced (homes.signals) when an offer
    product or the home settings change, which the cards show before the recompute that
    follows such a change (a task) has reached every home."""
    key = dashboard_cards_key(environment.pk)
    token = page_cache.get(environment.pk, key)
    if token is None:
        token = page_cache.add(environment.pk, key, secrets.token_hex(8), CARDS_TOKEN_SECONDS)
    return token


def page_home_settings(environment) -> HomeSettings:
    """home_settings for member pages, cached (every page needs them); a saved change drops
    the cached copy (homes.signals)."""
    key = home_settings_cache_key(environment.pk)
    settings = page_cache.get(environment.pk, key)
    if settings is None:
        settings = home_settings(environment)
        page_cache.store(environment.pk, key, settings, SETTINGS_CACHE_SECONDS)
    return settings


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


class Dashboard:
    """Everything the member dashboard shows.

    The home's stored figures, the display decision and the member's saved and selected
    offers are read for every view (one query; the settings come from the cache). The
    rest is read on first use: the liens, the value history and its chart, the offers and
    the borrowing formula. The page caches the part that shows them under `card_version`,
    so while the home's figures are not recomputed a view reads none of it.
    """

    def __init__(
        self, environment, member, settings, prop, visible, states, today, cards_token=""
    ) -> None:
        self.environment = environment
        self.member = member
        self.settings: HomeSettings = settings
        self.property: Property | None = prop
        self.visible: Visibility = visible
        self.states: dict[int, OfferState] = states
        self.today = today
        self.what_if: Decimal | None = None  # a value the member tries (no-JavaScript form)
        self.cards_token = cards_token

    @cached_property
    def liens(self) -> list[LienLine]:
        lines = []
        for lien in Lien.objects.filter(property=self.property).order_by("position"):
            terms = LienTerms(
                lien.position, lien.kind, lien.original_amount, lien.rate, lien.term_months,
                lien.origination_date, lien.balance, lien.balance_as_of, lien.pmi_monthly,
            )  # fmt: skip
            lines.append(
                LienLine(lien.get_kind_display(), current_balance(terms, self.today), lien.rate)
            )
        return lines

    @cached_property
    def history(self) -> list[tuple[date, Decimal]]:
        return _history(
            Valuation.objects.filter(property=self.property)
            .order_by("as_of", "id")
            .values_list("as_of", "value")
        )

    @cached_property
    def chart(self) -> Chart | None:
        return value_chart(self.history)

    @cached_property
    def _offers(self) -> tuple[list[OfferMatch], bool]:
        if self.property is None:
            return [], False
        return _matches_and_lines(self.environment, self.member, self.property)

    @property
    def matches(self) -> list[OfferMatch]:
        """The home's offers, best first; a product withdrawn since the last recompute is
        left out (its page answers 404)."""
        return self._offers[0]

    @property
    def top_matches(self) -> list[OfferMatch]:
        return self.matches[:3]

    @cached_property
    def formula(self) -> BorrowingFormula | None:
        """How the stored borrowing power was reached (the rule of homes.services.recompute):
        the best line offer's terms; the default CLTV where no line product is offered; None
        where line products are offered but none fits this home (its power is then zero,
        which no what-if of the default CLTV would reproduce)."""
        matches, line_products_offered = self._offers
        lines = [m for m in matches if m.product.is_line]
        if lines:
            p = max(lines, key=lambda m: m.amount or 0).product
            return BorrowingFormula(p.max_cltv, p.min_amount, p.max_amount, p.title)
        if line_products_offered:
            return None
        return BorrowingFormula(self.settings.default_max_cltv, None, None, "")

    # -- the borrowing power and its what-if ---------------------------------------------
    #: The what-if slider moves in steps of this many dollars from the home's value.
    slider_step = Decimal(1000)

    @property
    def _slider_span(self) -> Decimal:
        """Whole steps from the home's value to either end (about half its value): the
        range input's steps count from its min, so the value must be min + k steps."""
        return (self.property.value / 2 // self.slider_step) * self.slider_step

    @property
    def slider_min(self) -> Decimal:
        return self.property.value.quantize(Decimal(1)) - self._slider_span

    @property
    def slider_max(self) -> Decimal:
        return self.property.value.quantize(Decimal(1)) + self._slider_span

    @property
    def slider_value(self) -> Decimal:
        return (self.what_if or self.property.value).quantize(Decimal(1))

    @property
    def what_if_power(self) -> Decimal:
        return self.formula.amount(self.slider_value, self.property.lien_balance or 0)

    @property
    def cltv_percent(self) -> Decimal:
        return (self.formula.max_cltv * 100).normalize()

    @property
    def cltv_factor(self) -> Decimal:
        """The max CLTV as the formula multiplies by it: every significant digit (0.875),
        and at least two (0.80)."""
        factor = self.formula.max_cltv.normalize()
        return factor if factor.as_tuple().exponent < -2 else factor.quantize(Decimal("0.01"))

    @property
    def cltv_of_value(self) -> Decimal:
        """The value times the max CLTV, rounded down to the dollar as the borrowing power
        is: the formula shown then adds up to the figure it explains."""
        product = self.formula.max_cltv * self.property.value
        return product.quantize(Decimal(1), rounding=ROUND_DOWN)

    @cached_property
    def card_version(self) -> str:
        """Changes whenever the cached part of the page may have to: a recompute of the home
        (its value, liens, offers, the settings behind them), a change of an offer product
        or of the settings before that recompute (the cards token), a new day (balances
        amortize), a saved or selected offer, a what-if value."""
        prop = self.property
        computed = prop.computed_at.isoformat() if prop and prop.computed_at else ""
        states = ";".join(
            f"{pk}:{s.saved_at is not None:d}{s.selected_at is not None:d}"
            for pk, s in sorted(self.states.items())
        )
        return (
            f"{prop and prop.pk}|{computed}|{self.cards_token}|{self.today}|{self.what_if}|{states}"
        )


def _history(rows) -> list[tuple[date, Decimal]]:
    by_day: dict[date, Decimal] = {}
    for as_of, value in rows:  # ordered by as_of, id: the last of a day wins
        by_day[as_of] = value
    return sorted(by_day.items())


# Reads that run on every member page are written in SQL: composing the ORM query costs
# several times more than running it. ModelColumns builds the instances with the
# database's conversions applied; the environment is always in the condition.
_MEMBER = ModelColumns(Member, "m")
_HOME = ModelColumns(Property, "p")
_STATE = ModelColumns(MemberOffer, "mo", ("product_id", "saved_at", "selected_at"))
_P, _MO = Property._meta.db_table, MemberOffer._meta.db_table


@functools.cache
def _signed_in_sql() -> str:
    """The member with their first home by id, one row per offer state of theirs (none:
    one row of NULLs), and whether a booked appointment of theirs is still to end."""
    a, quote = Appointment._meta.db_table, connection.ops.quote_name
    first_home = (
        f"SELECT id FROM {_P} WHERE environment_id = m.environment_id "  # noqa: S608
        "AND member_id = m.id ORDER BY id LIMIT 1"
    )
    upcoming = (
        f"SELECT 1 FROM {a} WHERE environment_id = m.environment_id "  # noqa: S608
        f"AND member_id = m.id AND status = %s AND {quote('end')} > %s"
    )
    return (
        f"SELECT {_MEMBER.select()}, {_HOME.select()}, {_STATE.select()}, "  # noqa: S608
        f"EXISTS ({upcoming}) FROM {Member._meta.db_table} m "
        f"LEFT JOIN {_P} p ON p.id = ({first_home}) "
        f"LEFT JOIN {_MO} mo ON p.id IS NOT NULL AND mo.environment_id = m.environment_id "
        "AND mo.member_id = m.id "
        # An erased member's session signs nobody in: the tombstone has no pages.
        "WHERE m.environment_id = %s AND m.id = %s AND m.erased_at IS NULL"
    )


@functools.cache
def _home_sql(with_states: bool) -> str:
    """The member's first home by id; with_states: one row per offer state of the member
    (LEFT JOIN: one row with NULLs when there is none)."""
    first = (
        f"SELECT id FROM {_P} WHERE environment_id = %s AND member_id = %s "  # noqa: S608
        "ORDER BY id LIMIT 1"
    )
    if not with_states:
        return f"SELECT {_HOME.select()} FROM {_P} p WHERE p.id = ({first})"  # noqa: S608
    return (
        f"SELECT {_HOME.select()}, {_STATE.select()} FROM {_P} p "  # noqa: S608
        f"LEFT JOIN {_MO} mo ON mo.environment_id = p.environment_id "
        "AND mo.member_id = p.member_id "
        f"WHERE p.id = ({first})"
    )


@dataclass(frozen=True)
class OfferState:
    """What the member did with one offer, as the dashboard shows it."""

    product_id: int
    saved_at: datetime | None
    selected_at: datetime | None


@dataclass(frozen=True)
class SignedIn:
    """The signed-in member and what member pages show of them, read in one query."""

    member: Member
    home: Property | None  # their first home by id
    states: dict[int, OfferState]  # what they did with offers, by product id
    upcoming_appointment: bool  # a booked appointment that has not ended (as of the read)


def signed_in(environment, member_id: int, *, now: datetime) -> SignedIn | None:
    """The member a session belongs to, if it is one of this environment's, with their
    home, offer states and whether they have an upcoming appointment (one query: member
    pages need them all, and each read is a database round trip)."""
    params = [Appointment.Status.BOOKED, now, environment.pk, member_id]
    with connection.cursor() as cursor:
        cursor.execute(_signed_in_sql(), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    at = len(_MEMBER)
    home = _HOME.instance(first, at) if first[at] is not None else None
    at += len(_HOME)
    states = {}
    for row in rows:
        product_id, saved_at, selected_at = _STATE.values(row, at)
        if product_id is not None:
            states[product_id] = OfferState(product_id, saved_at, selected_at)
    upcoming = bool(first[at + len(_STATE)])
    return SignedIn(_MEMBER.instance(first), home, states, upcoming)


def signed_in_member(environment, member_id: int) -> Member | None:
    """The member a session belongs to, if it is one of this environment's."""
    found = signed_in(environment, member_id, now=timezone.now())
    return found.member if found is not None else None


def member_home(environment, member) -> Property | None:
    """The member's home (the first of them by id)."""
    with connection.cursor() as cursor:
        cursor.execute(_home_sql(False), [environment.pk, member.pk])
        row = cursor.fetchone()
    return _HOME.instance(row) if row is not None else None


def member_home_and_states(environment, member) -> tuple[Property | None, dict[int, OfferState]]:
    """The member's home and their offer states by product id, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_home_sql(True), [environment.pk, member.pk])
        rows = cursor.fetchall()
    if not rows:
        return None, {}
    states = {}
    for row in rows:
        product_id, saved_at, selected_at = _STATE.values(row, len(_HOME))
        if product_id is not None:
            states[product_id] = OfferState(product_id, saved_at, selected_at)
    return _HOME.instance(rows[0]), states


_MATCH = ModelColumns(OfferMatch, "om")
_PRODUCT = ModelColumns(OfferProduct, "op")


@functools.cache
def _matches_sql() -> str:
    """Whether the environment offers an active line product, with one row per match of
    the home whose product is active, best first (none: one row of NULLs): the dashboard
    needs both, and reading the first only where no line matches would make the page's
    query count depend on the member's offers."""
    om, op = OfferMatch._meta.db_table, OfferProduct._meta.db_table
    kinds = ", ".join(["%s"] * len(OfferProduct.LINE_KINDS))
    line_products = (
        f"SELECT 1 FROM {op} WHERE environment_id = %s "  # noqa: S608
        f"AND is_active = %s AND kind IN ({kinds})"
    )
    active = f"SELECT id FROM {op} WHERE environment_id = %s AND is_active = %s"  # noqa: S608
    return (
        f"SELECT EXISTS ({line_products}), {_MATCH.select()}, {_PRODUCT.select()} "  # noqa: S608
        f"FROM (SELECT 1 AS one) o LEFT JOIN {om} om ON om.environment_id = %s "
        f"AND om.property_id = %s AND om.member_id = %s AND om.product_id IN ({active}) "
        f"LEFT JOIN {op} op ON op.id = om.product_id "
        "ORDER BY om.rank, om.id"
    )


def _matches_and_lines(environment, member, prop) -> tuple[list[OfferMatch], bool]:
    """The home's matches of active products, best first (their products attached), and
    whether the environment offers any active line product; one query."""
    params = [
        environment.pk, True, *OfferProduct.LINE_KINDS,
        environment.pk, prop.pk, member.pk, environment.pk, True,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_matches_sql(), params)
        rows = cursor.fetchall()
    matches = []
    for row in rows:
        if row[1] is None:  # the row of NULLs: no match
            continue
        match = _MATCH.instance(row, 1)
        match.product = _PRODUCT.instance(row, 1 + len(_MATCH))
        matches.append(match)
    return matches, bool(rows[0][0])


def saved_products(environment, board: Dashboard) -> list[OfferProduct]:
    """The active products the member saved that are not among the home's offers (the
    offers page lists them under "Saved offers"), newest first."""
    # Matches are listed only where the display filters let the page show them.
    matched = {m.product_id for m in board.matches} if board.visible.show_value else set()
    saved = sorted(
        (s for s in board.states.values() if s.saved_at and s.product_id not in matched),
        key=lambda s: s.saved_at,
        reverse=True,
    )
    if not saved:
        return []
    products = OfferProduct.objects.filter(
        environment=environment, is_active=True, pk__in=[s.product_id for s in saved]
    ).in_bulk()
    return [products[s.product_id] for s in saved if s.product_id in products]


def dashboard(
    environment, member, *, today: date | None = None, signed_in: SignedIn | None = None
) -> Dashboard:
    """What the member dashboard shows, in a fixed number of queries (see Dashboard); the
    home and offer states come from `signed_in` when the request read them already."""
    today = today or environment.institution.today()
    settings = page_home_settings(environment)
    if signed_in is not None and signed_in.member.pk == member.pk:
        prop, states = signed_in.home, signed_in.states
    else:
        prop, states = member_home_and_states(environment, member)
    visible = visibility(settings, prop, today)
    token = dashboard_cards_token(environment) if visible.show_value else ""
    return Dashboard(environment, member, settings, prop, visible, states, today, token)


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
    member_rate: Decimal | None  # rate (percent) of the first lien still owed (refinance alert)


PREVIOUS_GAP = timedelta(days=28)
#: Lien columns in the order of LienTerms' fields.
LIEN_TERMS_FIELDS = (
    "position", "kind", "original_amount", "rate", "term_months", "origination_date",
    "balance", "balance_as_of", "pmi_monthly",
)  # fmt: skip


def home_summaries(*, environment, member_ids) -> dict[int, HomeSummary]:
    """Each member's home in brief (first property by id), in a fixed number of queries.

    Figures the institution's display filters hide are None, as on the member pages.
    """
    member_ids = list(member_ids)
    settings = home_settings(environment)
    today = environment.institution.today()
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
    # The rate the member pays: that of the first lien with a balance today (a paid-off
    # mortgage charges none).
    first_rate: dict[int, Decimal] = {}
    for pid, *fields in (
        Lien.objects.filter(environment=environment, property_id__in=property_ids)
        .order_by("property_id", "position")
        .values_list("property_id", *LIEN_TERMS_FIELDS)
    ):
        terms = LienTerms(*fields)
        if pid not in first_rate and current_balance(terms, today) > 0:
            first_rate[pid] = terms.rate
    # The best match of an active product: one withdrawn since the last recompute (which
    # renumbers the ranks) must not be offered with a link that answers 404.
    top: dict[int, tuple[str, int]] = {}
    for pid, title, product_id in (
        OfferMatch.objects.filter(
            environment=environment, property_id__in=property_ids, product__is_active=True
        )
        .order_by("property_id", "rank", "id")
        .values_list("property_id", "product__title", "product_id")
    ):
        top.setdefault(pid, (title, product_id))

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
            top_offer_title=offer[0] if offer and shown else None,
            top_offer_path=f"/offers/{offer[1]}/" if offer and shown else None,
            member_rate=first_rate.get(prop.pk),
        )
    return summaries
