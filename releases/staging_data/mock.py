"""Mock staging data for a region, reproducible from a seed, at a chosen volume.

Members with their homes (drawn from the region's recorded sales), liens, value history and
the region's recorded sales; then equity and offers are computed from staging's own offer
products, and some members view, save or select their best offer, so every staging
dashboard has something real-looking to show. The data set replaces staging's members.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from homes.models import Member, MemberOffer, OfferMatch, Valuation
from homes.selectors import home_settings
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record
from institutions.tenancy import environment_scope
from releases.services.common import ReleaseRefused
from releases.staging_data import bulk, pseudonyms
from releases.staging_data.anonymize import copied_models
from releases.staging_data.common import (
    Progress,
    check_can_fill,
    homes_recompute,
    lock,
    member_data_clear,
    no_progress,
    sink_domain,
)
from releases.staging_data.mock_homes import HomeMaker
from releases.staging_data.regions import REGIONS

CHUNK = 2000
VALUATION_FIELDS = [
    "environment", "property", "provider", "value", "low", "high", "confidence", "fsd", "as_of",
]  # fmt: skip
MAX_MEMBERS = 1_000_000
MAX_HISTORY_MONTHS = 60


@dataclass
class MockResult:
    region: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def members(self) -> int:
        return self.counts.get("members", 0)

    def summary(self) -> str:
        return ", ".join(f"{n:,} {what}" for what, n in self.counts.items())


class MockMaker:
    def __init__(self, *, environment, seed: int, homes: HomeMaker, rng: random.Random):
        self.environment, self.seed, self.homes, self.rng = environment, seed, homes, rng
        self.domain = sink_domain()
        self.counts = {"members": 0, "properties": 0, "liens": 0, "valuations": 0}
        self.zone = environment.institution.tz
        # Nothing happened after the end of the data's day (in the institution's zone), nor
        # after now: a login or a selection from the future is impossible data.
        day_end = dt.datetime.combine(homes.today + dt.timedelta(days=1), dt.time(), self.zone)
        self.latest = min(day_end - dt.timedelta(microseconds=1), timezone.now())

    def moment(self, days_ago: int, rng: random.Random) -> dt.datetime:
        """A moment of the institution's daytime, `days_ago` days before the data's day; the
        day before when that time is still to come."""
        day = self.homes.today - dt.timedelta(days=days_ago)
        at = dt.time(rng.randint(7, 22), rng.randint(0, 59))
        moment = dt.datetime.combine(day, at, self.zone)
        if moment > self.latest:
            moment -= dt.timedelta(days=1)
        return moment.astimezone(dt.UTC)

    def member(self, i: int) -> Member:
        rng = self.rng
        first = rng.choice(pseudonyms.FIRST_NAMES)
        last = rng.choice(pseudonyms.LAST_NAMES)
        enrollment = rng.choices(list(Member.Enrollment.values), weights=[30, 62, 8])[0]
        enrolled = enrollment == Member.Enrollment.ENROLLED
        return Member(
            environment=self.environment,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{self.seed}-{i}@{self.domain}".lower(),
            external_id=f"MOCK-{self.seed}-{i:07d}",
            is_test=rng.random() < 0.03,
            enrollment=enrollment,
            opted_out_at=self.moment(rng.randint(1, 700), rng)
            if enrollment == Member.Enrollment.OPTED_OUT
            else None,
            last_login_at=self.moment(rng.randint(0, 120), rng) if enrolled else None,
        )

    def write(self, start: int, end: int) -> None:
        """Members start..end-1 with their homes, liens and value history."""
        members = [self.member(i) for i in range(start, end)]
        bulk.insert(members, need_ids=True)
        props, liens, histories = [], [], []
        for i, member in enumerate(members, start=start):
            opted_out = member.enrollment == Member.Enrollment.OPTED_OUT
            if self.rng.random() >= (0.3 if opted_out else 0.96):
                continue  # renters, and most of those who said they own no home
            prop, its_liens, its_history = self.homes.home(owner_occupied=self.rng.random() < 0.92)
            prop.member = member
            prop.external_id = f"MOCK-H{self.seed}-{i:07d}"
            props.append(prop)
            liens.extend(its_liens)
            histories.append(its_history)
        bulk.insert(props, need_ids=True)
        bulk.insert(liens)
        env = self.environment.pk
        history = [
            (env, prop.pk, "mock", value, low, high, confidence, fsd, as_of)
            for prop, rows in zip(props, histories, strict=True)
            for as_of, value, low, high, confidence, fsd in rows
        ]
        bulk.insert_values(Valuation, VALUATION_FIELDS, history)
        for what, rows in (("members", members), ("properties", props), ("liens", liens)):
            self.counts[what] += len(rows)
        self.counts["valuations"] += len(history)

    def engagement(self, rng: random.Random) -> int:
        """Some members viewed their best offer; fewer saved it; a few selected it."""
        best = (
            OfferMatch._base_manager.filter(environment=self.environment, rank=1)
            .order_by("member_id", "product_id")
            .values_list("member_id", "product_id")
        )
        rows, seen = [], set()
        for member_id, product_id in best:
            if member_id in seen or rng.random() >= 0.3:
                continue
            seen.add(member_id)
            viewed = self.moment(rng.randint(1, 90), rng)
            saved = min(viewed + dt.timedelta(minutes=rng.randint(1, 30)), self.latest)
            roll = rng.random()
            selected = saved + dt.timedelta(days=rng.randint(0, 10))
            if selected > self.latest:  # within the days left before the latest moment
                selected = saved + (self.latest - saved) * (selected - saved).days / 10
            rows.append(
                MemberOffer(
                    environment=self.environment,
                    member_id=member_id,
                    product_id=product_id,
                    first_viewed_at=viewed,
                    view_count=rng.randint(1, 6),
                    saved_at=saved if roll < 0.3 else None,
                    selected_at=selected if roll < 0.08 else None,
                )
            )
        bulk.insert(rows)
        return len(rows)


def mock_parameters_check(
    *,
    count: int,
    seed: int,
    region: str,
    sales: int | None = None,
    history_months: int = 12,
    today: dt.date | str | None = None,
    latest: dt.date | None = None,
) -> dict:
    """The parameters of a mock data set, checked (ReleaseRefused says what is wrong), as
    plain values to record. ``latest``: the institution's today, which the data's day may
    not pass (valuations, sales and logins dated in the future are impossible data)."""
    if region not in REGIONS:
        raise ReleaseRefused(f"Unknown region {region!r}; known: {', '.join(sorted(REGIONS))}.")
    if not isinstance(count, int) or not 1 <= count <= MAX_MEMBERS:
        raise ReleaseRefused(f"Choose between 1 and {MAX_MEMBERS:,} members.")
    if not isinstance(seed, int):
        raise ReleaseRefused("The seed is a whole number.")
    if sales is not None and sales < 1:
        raise ReleaseRefused("Choose at least one recorded sale (or leave it empty for all).")
    if not 0 <= history_months <= MAX_HISTORY_MONTHS:
        raise ReleaseRefused(f"Choose 0 to {MAX_HISTORY_MONTHS} months of value history.")
    day = dt.date.fromisoformat(today) if isinstance(today, str) else today
    if day is not None and latest is not None and day > latest:
        raise ReleaseRefused(
            f"The mock data's day ({day.isoformat()}) is after the institution's today "
            f"({latest.isoformat()}): choose a day on or before it."
        )
    spec = REGIONS[region]
    path = spec.sales_file()
    if not path.exists():
        raise ReleaseRefused(
            f"The recorded sales of {spec.name} are missing ({path}; set CHIMNEY_SALES_CSV)."
        )
    return {
        "count": count,
        "seed": seed,
        "region": region,
        "sales": sales,
        "history_months": history_months,
        "today": today.isoformat() if isinstance(today, dt.date) else today,
    }


def mock_data_generate(
    *,
    environment: Environment,
    count: int,
    seed: int,
    region: str,
    actor=None,
    sales: int | None = None,
    history_months: int = 12,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> MockResult:
    """Replace staging's members with `count` mock members of a region (their homes, liens,
    value history, the region's recorded sales, equity, offers and some engagement).

    The same seed, region and day give the same data. One transaction: a failure leaves
    staging as it was.
    """
    progress = progress or no_progress
    check_can_fill(environment, actor, "Mock data")
    mock_parameters_check(
        count=count,
        seed=seed,
        region=region,
        sales=sales,
        history_months=history_months,
        today=today,
        latest=environment.institution.today(),
    )
    spec = REGIONS[region]
    today = today or environment.institution.today()
    rng = random.Random(f"{seed}:{region}")  # noqa: S311 - mock data, not secrets
    with environment_scope(environment):
        prime_rate = home_settings(environment).prime_rate
    homes = HomeMaker(
        environment=environment,
        region=spec,
        comparables=spec.sales(),
        rng=rng,
        today=today,
        prime_rate=prime_rate,
        history_months=history_months,
    )
    maker = MockMaker(environment=environment, seed=seed, homes=homes, rng=rng)
    result = MockResult(region=region, seed=seed)
    with environment_scope(environment), transaction.atomic():
        lock(environment)
        relink = member_data_clear(
            environment,
            copied_models(),
            progress,
            actor=actor,
            actor_label="" if actor else "staging mock data",
        )
        recorded = homes.sales(sales, seed)
        progress("recorded sales", 0, len(recorded))
        bulk.insert(recorded)
        progress("recorded sales", len(recorded), len(recorded))
        progress("members", 0, count)
        for start in range(0, count, CHUNK):
            end = min(count, start + CHUNK)
            maker.write(start, end)
            progress("members", end, count)
        relink()
        homes_recompute(environment, progress, today=today)
        engaged = maker.engagement(random.Random(f"{seed}:{region}:engagement"))  # noqa: S311
        result.counts = {**maker.counts, "recorded sales": len(recorded), "engaged": engaged}
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            actor_label="" if actor else "staging mock data",
            environment=environment,
            object_type="homes.Member",
            object_repr=f"Staging replaced by mock data for {spec.name} (seed {seed}): "
            f"{result.summary()}"[:200],
            changes={"region": region, "seed": seed, "today": today.isoformat(), **result.counts},
        )
    return result
