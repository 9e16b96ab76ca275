"""Home valuation: the built-in comparable-sales estimator (numpy only, no Django)."""

from homes.valuation.estimator import (
    Comparable,
    ComparableSalesEstimator,
    Estimate,
    Subject,
    load_king_county_csv,
)

__all__ = [
    "Comparable",
    "ComparableSalesEstimator",
    "Estimate",
    "Subject",
    "load_king_county_csv",
]
