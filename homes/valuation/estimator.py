"""Built-in comparable-sales automated valuation model (AVM).

How a value is made (an appraiser's sales-comparison grid, learned from the sales):

1. A global hedonic model of log price is fitted once, at construction, on the sales given
   to the estimator: ridge least squares on piecewise-linear living area, lot and year
   built, grade/condition/view classes, a few interactions, ZIP effects and a smooth
   spatial surface. It supplies the default adjustment between any two homes.
2. For a subject, the sales within ``max_distance_km`` are ranked by a combined distance:
   kilometres plus a penalty for the difference in "quality" (the hedonic value of the
   physical descriptors), so a comparable is both near and alike.
3. On the ``market_comparables`` best of them a locally weighted, robust (bisquare) ridge
   regression re-learns the adjustments for this market area (price per square foot,
   lot, grade and age premiums differ between neighbourhoods), shrunk to the global ones.
4. Every comparable's price is adjusted to the subject; the value is the weighted
   geometric mean of the adjusted prices of the ``max_comparables`` best comparables and
   the FSD comes from their weighted dispersion.
5. With thousands of sales (``learned.MIN_SALES``), gradient-boosted trees learned from
   the same sales (learned.py) give a second value, and the reported value is their
   blend (``learned.LEARNED_WEIGHT`` on the learned one). The comparables still supply
   the range and the FSD; the FSD is calibrated on sales the trees did not learn from.

numpy and LightGBM are used; nothing here imports Django.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from homes.valuation import learned as _learned

# Hyper-parameters, tuned by 5-fold cross-validation inside the training part of the King
# County sales (never on the held-out part the benchmark reports on).
_CANDIDATES = 300  # geographically nearest sales considered before the combined distance
_QUALITY_KM = 3.0  # km of distance that one unit of log-quality difference is worth
_GLOBAL_RIDGE = 30.0  # shrinkage of the global hedonic coefficients (standardized terms)
_LOCAL_RIDGE = 10.0  # shrinkage of the local adjustments towards the global ones
_BISQUARE_C = 4.685  # Tukey's constant: 95% efficiency under normal errors
_ROBUST_PASSES = 2
_RECENCY_MONTHS = 24.0  # a comparable sold this many months before as_of weighs 1/e
_FSD_FLOOR = 0.01
_FILL_NEIGHBOURS = 15  # unknown descriptors are filled from this many nearest sales
_BATCH = 8192  # subjects valued per vectorized pass
_CALIBRATION_SALES = 1500  # sales valued leave-one-out to calibrate the FSD

# The region's recorded sales shipped with the platform (public record, May 2014 - May
# 2015): the estimator's benchmark and tests, the demo and staging mock data use them.
KING_COUNTY_SALES_CSV = Path(__file__).resolve().parents[1] / "data" / "king_county_sales_train.csv"

_KM_PER_DEG_LAT = 111.2
_THOUSAND = Decimal(1000)
_DESCRIPTORS = (
    "lot_sqft",
    "bedrooms",
    "bathrooms",
    "year_built",
    "grade",
    "condition",
    "view",
    "waterfront",
    "floors",
    "yr_renovated",
    "sqft_basement",
    "sqft_living15",
    "sqft_lot15",
)


@dataclass(frozen=True)
class Subject:
    """The home being valued; optional descriptors may be None (unknown)."""

    lat: float
    lon: float
    living_sqft: int
    lot_sqft: int | None = None
    bedrooms: int | None = None
    bathrooms: float | None = None
    year_built: int | None = None
    grade: int | None = None
    condition: int | None = None
    view: int | None = None
    waterfront: bool | None = None
    floors: float | None = None
    yr_renovated: int | None = None  # 0 = never renovated (as in King County records)
    sqft_basement: int | None = None
    sqft_living15: int | None = None
    sqft_lot15: int | None = None
    zipcode: str | None = None


@dataclass(frozen=True)
class Comparable:
    """A recorded sale; ``id`` is the caller's identifier and is opaque here."""

    id: object
    price: Decimal
    lat: float
    lon: float
    living_sqft: int
    sale_date: date | None = None
    lot_sqft: int | None = None
    bedrooms: int | None = None
    bathrooms: float | None = None
    year_built: int | None = None
    grade: int | None = None
    condition: int | None = None
    view: int | None = None
    waterfront: bool | None = None
    floors: float | None = None
    yr_renovated: int | None = None
    sqft_basement: int | None = None
    sqft_living15: int | None = None
    sqft_lot15: int | None = None
    zipcode: str | None = None


@dataclass(frozen=True)
class Estimate:
    """A value with its range, forecast standard deviation and the comparables behind it.

    ``value``, ``low`` and ``high`` are rounded to the nearest $1,000 with ROUND_HALF_EVEN;
    ``low``/``high`` are value x (1 -/+ fsd). ``confidence`` is the probability, in percent,
    that the price lies within 10% of ``value`` if the error is normal with sd = fsd.
    ``comparables`` holds ``(id, adjusted_price, weight)`` tuples, best first: the weights
    sum to 1 and the adjusted prices (Decimal) are rounded to the dollar.
    """

    value: Decimal
    low: Decimal
    high: Decimal
    fsd: Decimal
    confidence: int
    comparables: tuple


def round_to_thousand(amount: float) -> Decimal:
    """Round dollars to the nearest $1,000 (ROUND_HALF_EVEN) as a Decimal."""
    thousands = (Decimal(repr(float(amount))) / _THOUSAND).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    )
    return thousands * _THOUSAND


def confidence_from_fsd(fsd: float) -> int:
    """Return P(|error| <= 10%) in percent for a normal error with sd = fsd."""
    if fsd <= 0:
        return 100
    return round(100 * math.erf(0.10 / (fsd * math.sqrt(2))))


# --------------------------------------------------------------------------- geometry


class _Grid:
    """Bucket index of points (km) on square cells, for exact k-nearest queries."""

    def __init__(self, xy: np.ndarray, cell_km: float) -> None:
        self.xy = xy
        self.cell = cell_km
        cells = np.floor(xy / cell_km).astype(np.int64)
        self.origin = cells.min(axis=0)
        cells -= self.origin
        self.shape = cells.max(axis=0) + 1
        flat = cells[:, 0] * self.shape[1] + cells[:, 1]
        self.order = np.argsort(flat, kind="stable")
        counts = np.bincount(flat, minlength=int(self.shape.prod()))
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        # 2-D prefix sums give the number of points in any block of cells in O(1).
        self.prefix = np.zeros((self.shape[0] + 1, self.shape[1] + 1), np.int64)
        self.prefix[1:, 1:] = counts.reshape(self.shape).cumsum(0).cumsum(1)

    def _block(self, cx: int, cy: int, r: int) -> tuple[int, int, int, int]:
        x0, x1 = max(cx - r, 0), min(cx + r, self.shape[0] - 1)
        y0, y1 = max(cy - r, 0), min(cy + r, self.shape[1] - 1)
        return x0, x1, y0, y1

    def _count(self, x0: int, x1: int, y0: int, y1: int) -> int:
        if x0 > x1 or y0 > y1:
            return 0
        p = self.prefix
        return int(p[x1 + 1, y1 + 1] - p[x0, y1 + 1] - p[x1 + 1, y0] + p[x0, y0])

    def _members(self, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
        if x0 > x1 or y0 > y1:
            return np.empty(0, np.int64)
        ny = self.shape[1]
        # Cells are stored column by column, so each x column of the block is one slice.
        parts = [
            self.order[self.starts[x * ny + y0] : self.starts[x * ny + y1 + 1]]
            for x in range(x0, x1 + 1)
        ]
        return np.concatenate(parts)

    def nearest(self, query: np.ndarray, k: int, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices (-1 = none) and km of the k nearest points within radius, nearest first."""
        n = len(query)
        idx = np.full((n, k), -1, np.int64)
        dist = np.full((n, k), np.inf)
        cells = np.floor(query / self.cell).astype(np.int64) - self.origin
        groups, inverse = np.unique(cells, axis=0, return_inverse=True)
        members_of = np.argsort(inverse.ravel(), kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse.ravel()))])
        max_r = math.ceil(min(radius_km, 1e6) / self.cell) + 1
        span = int(self.shape.max())
        for g, (cx, cy) in enumerate(groups):
            rows = members_of[bounds[g] : bounds[g + 1]]
            # Grow the block until it holds k points; then make sure it covers the k-th
            # nearest distance of every query in the group, so the answer is exact.
            limit = min(max_r, span)
            r = 1
            while r < limit and self._count(*self._block(cx, cy, r)) < k:
                r += 1
            while True:
                cand = self._members(*self._block(cx, cy, r))
                kk = min(k, len(cand))
                if kk:
                    diff = query[rows, None, :] - self.xy[cand][None]
                    d = np.sqrt((diff**2).sum(axis=2))
                    d[d > radius_km] = np.inf
                    part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < len(cand) else None
                    top = d if part is None else np.take_along_axis(d, part, 1)
                # Unseen points can only be nearer than the k-th found if they lie within
                # its distance (or within the radius when fewer than k were found).
                short = kk < k or bool(np.isinf(top).any()) if kk else True
                reach = radius_km if short else float(top.max())
                if reach <= r * self.cell or r >= limit:
                    break
                r = limit if math.isinf(reach) else min(math.ceil(reach / self.cell), limit)
            if kk == 0:
                continue
            top_idx = cand[None, :].repeat(len(rows), 0) if part is None else cand[part]
            order = np.argsort(top, axis=1, kind="stable")
            top = np.take_along_axis(top, order, 1)
            top_idx = np.take_along_axis(top_idx, order, 1)
            dist[rows, :kk] = top
            idx[rows, :kk] = np.where(np.isfinite(top), top_idx, -1)
        return idx, dist


# ------------------------------------------------------------------ hedonic model


def _onehot(values: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    return (values[:, None] == np.asarray(levels, float)[None]).astype(float)


def _hinge(values: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    return np.maximum(values[:, None] - np.asarray(knots, float)[None], 0.0)


def _physical_terms(c: dict[str, np.ndarray]) -> np.ndarray:
    """Regressors describing the house itself (no location, no time)."""
    living = np.log(np.maximum(c["living_sqft"], 100))
    lot = np.log(np.maximum(c["lot_sqft"], 100))
    grade = np.clip(np.round(c["grade"]), 5, 12)
    built = c["year_built"]
    # Any reference year gives the same fit: it only mixes in the plain columns.
    age = (2015 - built) / 100
    renovated = (c["yr_renovated"] > 0).astype(float)
    basement = np.clip(c["sqft_basement"], 0, c["living_sqft"])
    above = np.log(np.maximum(c["living_sqft"] - basement, 100))
    living15 = np.log(np.maximum(c["sqft_living15"], 100))
    lot15 = np.log(np.maximum(c["sqft_lot15"], 100))
    return np.hstack(
        [
            living[:, None],
            _hinge(living, np.log([1000, 1500, 2000, 2500, 3200, 4000])),
            lot[:, None],
            _hinge(lot, np.log([3000, 5000, 7500, 10000, 20000, 43560])),
            _onehot(grade, range(6, 13)),
            _onehot(np.round(c["condition"]), [1, 2, 4, 5]),
            _onehot(np.round(c["view"]), [1, 2, 3, 4]),
            c["waterfront"][:, None],
            built[:, None],
            _hinge(built, [1915, 1940, 1965, 1990, 2005]),
            renovated[:, None],
            (renovated * np.clip(c["yr_renovated"] - 1935, 0, 80))[:, None],
            c["bathrooms"][:, None],
            _onehot(np.clip(np.round(c["bedrooms"]), 1, 6), [1, 2, 4, 5, 6]),
            _onehot(c["floors"], [1.5, 2, 2.5, 3, 3.5]),
            (basement / np.maximum(c["living_sqft"], 1))[:, None],
            (basement > 0)[:, None].astype(float),
            living15[:, None],
            lot15[:, None],
            np.stack(
                [
                    living * grade,
                    living * age,
                    grade * age,
                    c["condition"] * age,
                    c["view"] * c["waterfront"],
                    lot * lot15,
                    living * living15,
                    above,
                    c["bathrooms"] / np.maximum(c["bedrooms"], 1),
                ],
                axis=1,
            ),
        ]
    )


def _local_terms(c: dict[str, np.ndarray]) -> np.ndarray:
    """Descriptors whose price adjustment is re-learned in each market area."""
    return np.stack(
        [
            np.log(np.maximum(c["living_sqft"], 100)),
            np.log(np.maximum(c["lot_sqft"], 100)),
            c["grade"],
            c["year_built"],
            c["condition"],
            c["view"],
            c["bathrooms"],
            c["bedrooms"],
        ],
        axis=1,
    )


def _rbf(xy: np.ndarray, centres: np.ndarray, scale_km: float) -> np.ndarray:
    d2 = ((xy[:, None, :] - centres[None]) ** 2).sum(axis=2)
    return np.exp(-d2 / (2 * scale_km**2))


class _HedonicModel:
    """Global ridge regression of log price; supplies default adjustments."""

    def __init__(self, sales_xy: np.ndarray, zips: Sequence[str | None], dated: bool) -> None:
        self.zip_levels = sorted({z for z in zips if z is not None})
        self.zip_index = {z: i for i, z in enumerate(self.zip_levels)}
        # A deterministic sample of sales as centres of a smooth price surface at two scales.
        rng = np.random.default_rng(0)
        n = len(sales_xy)
        self.centres = [
            (sales_xy[rng.choice(n, size=m, replace=False)], scale)
            for m, scale in ((min(600, n // 25), 1.0), (min(150, n // 100), 3.0))
            if m > 0
        ]
        self.dated = dated

    def _design(
        self,
        c: dict[str, np.ndarray],
        zips: Sequence[str | None],
        xy: np.ndarray,
        months: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        physical = _physical_terms(c)
        z = np.zeros((len(zips), len(self.zip_levels)))
        for row, code in enumerate(zips):
            col = None if code is None else self.zip_index.get(code)
            if col is not None:
                z[row, col] = 1.0
        parts = [z] + [_rbf(xy, centres, scale) for centres, scale in self.centres]
        if self.dated:
            known = ~np.isnan(months)
            parts.append(np.stack([np.where(known, months, 0.0), (~known) * 1.0], axis=1))
        return physical, np.hstack(parts)

    def fit(
        self,
        c: dict[str, np.ndarray],
        zips: Sequence[str | None],
        xy: np.ndarray,
        months: np.ndarray,
        log_price: np.ndarray,
    ) -> _HedonicModel:
        physical, place = self._design(c, zips, xy, months)
        x = np.hstack([physical, place])
        self.n_physical = physical.shape[1]
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)  # constant columns drop out after centring
        xs = (x - self.mean) / self.std
        self.intercept = float(log_price.mean())
        gram = xs.T @ xs + _GLOBAL_RIDGE * np.eye(xs.shape[1])
        self.beta = np.linalg.solve(gram, xs.T @ (log_price - self.intercept))
        local = _local_terms(c)
        self.local_mean = local.mean(axis=0)
        local_std = local.std(axis=0)
        self.local_std = np.where(local_std > 1e-12, local_std, 1.0)
        return self

    def predict(
        self,
        c: dict[str, np.ndarray],
        zips: Sequence[str | None],
        xy: np.ndarray,
        months: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log price and the physical ("quality") part of it."""
        physical, place = self._design(c, zips, xy, months)
        xs = (np.hstack([physical, place]) - self.mean) / self.std
        k = self.n_physical
        quality = xs[:, :k] @ self.beta[:k]
        return self.intercept + quality + xs[:, k:] @ self.beta[k:], quality

    def local(self, c: dict[str, np.ndarray]) -> np.ndarray:
        return (_local_terms(c) - self.local_mean) / self.local_std


# ------------------------------------------------------------------ the estimator


def _columns(records: Sequence[Subject | Comparable]) -> dict[str, np.ndarray]:
    """Descriptor arrays, NaN where unknown."""

    def column(name: str) -> np.ndarray:
        values = (getattr(r, name) for r in records)
        return np.array([np.nan if v is None else float(v) for v in values], float)

    return {name: column(name) for name in ("lat", "lon", "living_sqft", *_DESCRIPTORS)}


def _fill_unknowns(
    cols: dict[str, np.ndarray],
    near: np.ndarray,
    source: dict[str, np.ndarray],
    defaults: dict[str, float],
) -> dict[str, np.ndarray]:
    """Replace unknown descriptors by the median among nearby sales (else the pool's)."""
    out = dict(cols)
    for name in _DESCRIPTORS:
        missing = np.isnan(cols[name])
        if not missing.any():
            continue
        rows = near[missing]
        values = np.where(rows >= 0, source[name][np.maximum(rows, 0)], np.nan)
        known = ~np.isnan(values)
        # Median of the known neighbour values, computed without an all-NaN warning.
        ranked = np.sort(np.where(known, values, np.inf), axis=1)
        count = known.sum(axis=1)
        lo = np.take_along_axis(ranked, np.maximum((count - 1) // 2, 0)[:, None], 1)[:, 0]
        hi = np.take_along_axis(ranked, np.maximum(count // 2, 0)[:, None], 1)[:, 0]
        local = np.where(count > 0, (lo + hi) / 2, defaults[name])
        filled = cols[name].copy()
        filled[missing] = local
        out[name] = filled
    return out


def _weighted_mad(error: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Robust scale per row: the weighted median absolute error / 0.6745."""
    absolute = np.abs(error)
    order = np.argsort(absolute, axis=1)
    a = np.take_along_axis(absolute, order, 1)
    cum = np.cumsum(np.take_along_axis(weights, order, 1), axis=1)
    pos = np.minimum((cum < cum[:, -1:] / 2).sum(axis=1, keepdims=True), a.shape[1] - 1)
    return np.take_along_axis(a, pos, 1) / 0.6745


class ComparableSalesEstimator:
    """Values homes from the recorded sales near them (see the module docstring)."""

    def __init__(
        self,
        sales: Iterable[Comparable],
        *,
        min_comparables: int = 5,
        max_comparables: int = 15,
        max_distance_km: float = 5.0,
        as_of: date | None = None,
        market_comparables: int = 40,
        learned: bool | None = None,
    ) -> None:
        self.sales: tuple[Comparable, ...] = tuple(sales)
        if not self.sales:
            raise ValueError("the estimator needs at least one recorded sale")
        if not 1 <= min_comparables <= max_comparables:
            raise ValueError("need 1 <= min_comparables <= max_comparables")
        self.min_comparables = min_comparables
        self.max_comparables = max_comparables
        self.max_distance_km = float(max_distance_km)
        # The local adjustments need more sales than the final grid shows.
        self.market_comparables = max(market_comparables, max_comparables)

        cols = _columns(self.sales)
        self._lat0 = float(np.mean(cols["lat"]))
        self._xy = self._project(cols["lat"], cols["lon"])
        self._grid = _Grid(self._xy, cell_km=2.0)
        self._log_price = np.log([float(s.price) for s in self.sales])

        known_dates = [s.sale_date for s in self.sales if s.sale_date is not None]
        self.as_of = as_of if as_of is not None else max(known_dates, default=None)
        # Months from sale to as_of; NaN when unknown (no time adjustment or recency weight).
        self._months = np.array(
            [
                np.nan
                if s.sale_date is None or self.as_of is None
                else (self.as_of - s.sale_date).days / 30.44
                for s in self.sales
            ]
        )

        # The nearest sale is usually the sale itself, whose unknowns are NaN and skipped.
        near, _ = self._grid.nearest(self._xy, _FILL_NEIGHBOURS + 1, math.inf)
        self._defaults = {
            k: float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0 for k, v in cols.items()
        }
        self._cols = _fill_unknowns(cols, near, cols, self._defaults)
        raw_zips = [s.zipcode for s in self.sales]
        self._zips = [
            z if z is not None else next((raw_zips[j] for j in row if j >= 0 and raw_zips[j]), None)
            for z, row in zip(raw_zips, near, strict=True)
        ]
        self._model = _HedonicModel(self._xy, self._zips, dated=bool(known_dates)).fit(
            self._cols, self._zips, self._xy, self._months, self._log_price
        )
        self._global, self._quality = self._model.predict(
            self._cols, self._zips, self._xy, self._months
        )
        self._local = self._model.local(self._cols)
        self._log_ppsf = self._log_price - np.log(np.maximum(self._cols["living_sqft"], 100))
        self._fsd_line = (0.0, 1.0 / 0.6745)  # until calibrated: the spread as a 1-sd
        # The learned value (learned.py) needs thousands of sales; None = decide by count.
        use_learned = len(self.sales) >= _learned.MIN_SALES if learned is None else learned
        self._learned: _learned.LearnedValue | None = None
        self._learned_x: np.ndarray | None = None
        if use_learned:
            self._learned_x = self._training_features()
        self._calibrate_fsd()
        if self._learned_x is not None:
            self._learned = self._fit_learned(self._learned_x, np.arange(len(self.sales)))
            self._learned_x = None  # only needed for fitting

    def _project(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        # Equirectangular projection: exact enough within a county for km distances.
        kx = _KM_PER_DEG_LAT * math.cos(math.radians(self._lat0))
        return np.stack([lon * kx, lat * _KM_PER_DEG_LAT], axis=1)

    def estimate(self, subject: Subject) -> Estimate | None:
        """Value one home, or None when too few comparables lie within reach."""
        return self.estimate_many([subject])[0]

    def estimate_many(self, subjects: Sequence[Subject]) -> list[Estimate | None]:
        """Value many homes in one batched pass (same results as estimate())."""
        subjects = list(subjects)
        if len(subjects) > _BATCH:
            # Bounded memory: the per-subject work arrays are ~(batch x 300) wide.
            return [
                estimate
                for start in range(0, len(subjects), _BATCH)
                for estimate in self.estimate_many(subjects[start : start + _BATCH])
            ]
        results: list[Estimate | None] = [None] * len(subjects)
        if not subjects:
            return results
        cols = _columns(subjects)
        xy = self._project(cols["lat"], cols["lon"])
        cand, cand_km = self._grid.nearest(xy, _CANDIDATES, self.max_distance_km)
        # "Too few comparables": fewer usable sales than min_comparables within reach.
        rows = np.flatnonzero((cand >= 0).sum(axis=1) >= self.min_comparables)
        if not len(rows):
            return results
        cols = {k: v[rows] for k, v in cols.items()}
        cand, cand_km, xy = cand[rows], cand_km[rows], xy[rows]
        near = cand[:, :_FILL_NEIGHBOURS]
        cols = _fill_unknowns(cols, near, self._cols, self._defaults)
        zips = [
            code if code in self._model.zip_index else self._zips[near[r, 0]]
            for r, code in enumerate(subjects[i].zipcode for i in rows)
        ]
        # Subjects are valued as of as_of, i.e. zero months after it.
        g_subject, q_subject = self._model.predict(cols, zips, xy, np.zeros(len(rows)))
        nn, weights, adjusted = self._grid_of_comparables(
            cand, cand_km, g_subject, q_subject, self._model.local(cols)
        )
        nn, weights, adjusted, centre, spread = self._reconcile(nn, weights, adjusted)
        if self._learned is not None:
            k = _learned.NEIGHBOURS[-1]
            x = self._features(cols, zips, xy, cand[:, :k], cand_km[:, :k], today=True)
            centre = self._blend(self._learned.predict(x, self._log_living(cols)), centre)
        fsd = self._fsd(spread)
        value = np.exp(centre)
        for r, i in enumerate(rows):
            keep = weights[r] > 0
            results[i] = Estimate(
                value=round_to_thousand(value[r]),
                low=round_to_thousand(value[r] * max(1 - fsd[r], 0.0)),
                high=round_to_thousand(value[r] * (1 + fsd[r])),
                fsd=Decimal(repr(float(fsd[r]))).quantize(
                    Decimal("0.0001"), rounding=ROUND_HALF_EVEN
                ),
                confidence=confidence_from_fsd(float(fsd[r])),
                comparables=tuple(
                    (self.sales[j].id, Decimal(round(math.exp(a))), round(float(w), 4))
                    for j, a, w in zip(
                        nn[r][keep].tolist(),
                        adjusted[r][keep].tolist(),
                        weights[r][keep].tolist(),
                        strict=True,
                    )
                ),
            )
        return results

    # ------------------------------------------------------------ the learned value

    @staticmethod
    def _log_living(cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.log(np.maximum(cols["living_sqft"], 100))

    @staticmethod
    def _blend(learned_log: np.ndarray, comparables_log: np.ndarray) -> np.ndarray:
        w = _learned.LEARNED_WEIGHT
        return w * learned_log + (1 - w) * comparables_log

    def _features(
        self,
        cols: dict[str, np.ndarray],
        zips: Sequence[str | None],
        xy: np.ndarray,
        neighbours: np.ndarray,
        km: np.ndarray,
        *,
        today: bool,
        months: np.ndarray | None = None,
    ) -> np.ndarray:
        if today:  # a subject is valued as of as_of: zero months after it (NaN if undated)
            months = np.full(len(neighbours), 0.0 if self._model.dated else np.nan)
        around = _learned.neighbour_features(self._log_ppsf, neighbours, km)
        return _learned.features(cols, zips, months, around, xy)

    def _training_features(self) -> np.ndarray:
        """Features of every sale, its neighbourhood taken from the other sales only."""
        k = _learned.NEIGHBOURS[-1]
        near, km = self._grid.nearest(self._xy, k + 1, math.inf)
        own = near == np.arange(len(near))[:, None]
        # Drop the sale itself (wherever ties put it), keeping the others nearest first.
        order = np.argsort(own, axis=1, kind="stable")[:, :k]
        near, km = np.take_along_axis(near, order, 1), np.take_along_axis(km, order, 1)
        return self._features(
            self._cols, self._zips, self._xy, near, km, today=False, months=self._months
        )

    def _fit_learned(self, x: np.ndarray, rows: np.ndarray) -> _learned.LearnedValue:
        return _learned.LearnedValue(
            x[rows], self._log_price[rows], self._log_living(self._cols)[rows]
        )

    def _grid_of_comparables(
        self,
        cand: np.ndarray,
        cand_km: np.ndarray,
        g_subject: np.ndarray,
        q_subject: np.ndarray,
        s_subject: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pick market comparables, learn local adjustments, adjust every price."""
        safe = np.maximum(cand, 0)
        combined = cand_km + _QUALITY_KM * np.abs(self._quality[safe] - q_subject[:, None])
        combined = np.where(cand >= 0, combined, np.inf)
        k = min(self.market_comparables, cand.shape[1])
        pick = np.argpartition(combined, k - 1, axis=1)[:, :k]
        nn = np.take_along_axis(safe, pick, 1)
        dist = np.take_along_axis(combined, pick, 1)
        used = np.isfinite(dist)

        # Gaussian kernel with a bandwidth that adapts to how dense the comparables are.
        dist = np.where(used, dist, np.nan)
        bandwidth = np.maximum(np.nanmedian(dist, axis=1, keepdims=True), 1e-3)
        kernel = np.where(used, np.exp(-((np.nan_to_num(dist) / bandwidth) ** 2)), 0.0)
        months = self._months[nn]
        # Older sales say less about today's value; undated sales get no recency penalty.
        kernel *= np.where(np.isnan(months), 1.0, np.exp(-np.abs(months) / _RECENCY_MONTHS))

        diff = self._local[nn] - s_subject[:, None, :]
        x = np.concatenate([np.ones((*nn.shape, 1)), diff], axis=2)
        residual = self._log_price[nn] - self._global[nn]
        penalty = np.eye(x.shape[2]) * _LOCAL_RIDGE
        penalty[0, 0] = 1e-9  # the local price level itself is not shrunk
        weights = kernel
        for _ in range(_ROBUST_PASSES + 1):
            xtw = x.transpose(0, 2, 1) * weights[:, None, :]
            beta = np.linalg.solve(xtw @ x + penalty, xtw @ residual[..., None])[..., 0]
            error = residual - (x @ beta[..., None])[..., 0]
            scale = _weighted_mad(error, weights) + 1e-3
            bisquare = np.clip(1 - (error / (_BISQUARE_C * scale)) ** 2, 0, None) ** 2
            weights = kernel * bisquare
        # Each comparable's log price moved to the subject: the global adjustment between
        # the two homes, corrected by the local re-estimate of each descriptor's price.
        adjusted = (
            self._log_price[nn]
            + (g_subject[:, None] - self._global[nn])
            - (diff * beta[:, None, 1:]).sum(axis=2)
        )
        weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, kernel)
        return nn, weights, adjusted

    def _reconcile(
        self, nn: np.ndarray, weights: np.ndarray, adjusted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Keep the max_comparables best comparables (best first); weighted centre, spread."""
        order = np.argsort(-weights, axis=1, kind="stable")[:, : self.max_comparables]
        nn = np.take_along_axis(nn, order, 1)
        adjusted = np.take_along_axis(adjusted, order, 1)
        weights = np.take_along_axis(weights, order, 1)
        weights = weights / weights.sum(axis=1, keepdims=True)
        centre = (weights * adjusted).sum(axis=1)
        variance = (weights * (adjusted - centre[:, None]) ** 2).sum(axis=1)
        n_eff = 1.0 / (weights**2).sum(axis=1)
        # The subject's own price scatters like a comparable's, plus the mean's uncertainty.
        spread = np.sqrt(variance * (1 + 1 / n_eff))
        return nn, weights, adjusted, centre, spread

    def _fsd(self, spread: np.ndarray) -> np.ndarray:
        a, b = self._fsd_line
        return np.maximum((a + b * spread), _FSD_FLOOR)

    def _calibrate_fsd(self) -> None:
        """Fit FSD = a + b * spread so the median |log error| is 0.6745 FSD (normal 1-sd).

        The errors come from leave-one-out valuations of a fixed sample of the sales: the
        comparables' spread alone understates the error (robust weights drop outliers, and
        part of a price is unexplained by any descriptor).
        """
        n = len(self.sales)
        # With a learned value, three quarters of the sales at least are left to learn from.
        size = min(n if self._learned_x is None else n // 4, _CALIBRATION_SALES)
        sample = np.sort(np.random.default_rng(1).permutation(n)[:size])
        cand, cand_km = self._grid.nearest(self._xy[sample], _CANDIDATES + 1, self.max_distance_km)
        own = cand == sample[:, None]
        cand, cand_km = np.where(own, -1, cand), np.where(own, np.inf, cand_km)
        keep = (cand >= 0).sum(axis=1) >= self.min_comparables
        if keep.sum() < 10:
            return
        rows = sample[keep]
        # Each sale is valued at its own sale date, so the value compares with its price.
        g = self._global[rows]
        nn, weights, adjusted = self._grid_of_comparables(
            cand[keep], cand_km[keep], g, self._quality[rows], self._local[rows]
        )
        *_, centre, spread = self._reconcile(nn, weights, adjusted)
        if self._learned_x is not None:
            # The learned value is calibrated on sales it did not learn from: a model fitted
            # without the calibration sample values them, then the model used for subjects
            # learns from every sale.
            held = np.zeros(n, bool)
            held[sample] = True
            partial = self._fit_learned(self._learned_x, np.flatnonzero(~held))
            log_living = self._log_living(self._cols)[rows]
            centre = self._blend(partial.predict(self._learned_x[rows], log_living), centre)
        error = np.abs(self._log_price[rows] - centre) / 0.6745
        # Median (least absolute deviation) regression by iteratively reweighted LS.
        x = np.stack([np.ones_like(spread), spread], axis=1)
        coef = np.array([0.0, 1.0])
        for _ in range(50):
            w = 1.0 / np.maximum(np.abs(error - x @ coef), 1e-4)
            coef = np.linalg.solve((x.T * w) @ x + 1e-9 * np.eye(2), (x.T * w) @ error)
        a, b = float(max(coef[0], 0.0)), float(max(coef[1], 0.0))
        self._fsd_line = (a, b)


def load_king_county_csv(path: str | Path) -> list[Comparable]:
    """Read the King County sales CSV into Comparables (id = 0-based row index)."""

    def whole(text: str) -> int:
        return int(float(text))

    with open(path, newline="") as handle:
        return [
            Comparable(
                id=i,
                price=Decimal(row["price"]),
                lat=float(row["lat"]),
                lon=float(row["long"]),
                living_sqft=whole(row["sqft_living"]),
                lot_sqft=whole(row["sqft_lot"]),
                bedrooms=whole(row["bedrooms"]),
                bathrooms=float(row["bathrooms"]),
                year_built=whole(row["yr_built"]),
                grade=whole(row["grade"]),
                condition=whole(row["condition"]),
                view=whole(row["view"]),
                waterfront=whole(row["waterfront"]) != 0,
                floors=float(row["floors"]),
                yr_renovated=whole(row["yr_renovated"]),
                sqft_basement=whole(row["sqft_basement"]),
                sqft_living15=whole(row["sqft_living15"]),
                sqft_lot15=whole(row["sqft_lot15"]),
                zipcode=row["zipcode"].strip().split(".")[0],
            )
            for i, row in enumerate(csv.DictReader(handle))
        ]
