"""Metric providers, decoupled: each app registers the metrics it owns; the oracle reads them.

notifications owns delivery failures and flags owns request and event metrics, and
neither imports the other, so both register here (a lower app) in AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Measurement:
    value: float | None  # None when there is no data in the window
    sample: int  # how many observations the value rests on (requests, deliveries, events)
    detail: str = ""  # the numbers behind it, for people ("12 of 340 requests were 5xx")


#: provider(environment, start, end, cohort) -> Measurement; cohort is "all", "test" or "non_test".
Provider = Callable[[object, datetime, datetime, str], Measurement]
#: The values a metric can take, (lowest, highest), None for an open end.
ValueRange = tuple[float | None, float | None]
#: A share of observations: 0 (none) to 1 (all); 5% is 0.05.
SHARE: ValueRange = (0.0, 1.0)
#: A count, duration or rate that cannot be negative.
NON_NEGATIVE: ValueRange = (0.0, None)


@dataclass(frozen=True)
class _Registered:
    provider: Provider
    description: str
    value_range: ValueRange | None


_providers: dict[str, _Registered] = {}


def register_metric(
    name: str, provider: Provider, *, description: str, value_range: ValueRange | None = None
) -> None:
    """Declare a metric the oracle can judge, with a one-line description.

    value_range is what its values can be (SHARE, NON_NEGATIVE, …): rules whose thresholds
    fall outside it could never fire, so the places that take thresholds check them.
    """
    _providers[name] = _Registered(provider, description, value_range)


def metric_names() -> dict[str, str]:
    return {name: registered.description for name, registered in sorted(_providers.items())}


def metric_range(name: str) -> ValueRange | None:
    """The values a registered metric can take (None: not declared or not registered)."""
    registered = _providers.get(name)
    return registered.value_range if registered else None


def measure(
    name: str, *, environment, start: datetime, end: datetime, cohort: str = "all"
) -> Measurement:
    """Measure one registered metric over [start, end) for a cohort."""
    if name not in _providers:
        raise KeyError(f"Unknown metric {name!r}; known: {', '.join(sorted(_providers))}")
    if cohort not in {"all", "test", "non_test"}:
        raise ValueError(f"Unknown cohort {cohort!r}")
    provider = _providers[name].provider
    # Providers read tenant-owned rows: run them in the measured environment's scope, not
    # the caller's (a release watch runs in staging's scope and measures production).
    from institutions.tenancy import environment_scope

    if getattr(environment, "pk", None) is None:
        return provider(environment, start, end, cohort)
    with environment_scope(environment):
        return provider(environment, start, end, cohort)


def thresholds_out_of_range(metric: str, thresholds: dict) -> list[str]:
    """Thresholds the metric can never reach, e.g. 5 (meant as 5%) for a share of 0 to 1.

    ``thresholds`` maps a field's name to its value; the message names each one outside.
    """
    value_range = metric_range(metric)
    if value_range is None:
        return []
    low, high = value_range
    outside = {
        key: value
        for key, value in thresholds.items()
        if (low is not None and value < low) or (high is not None and value > high)
    }
    if not outside:
        return []
    given = " and ".join(f"{key} {value!r}" for key, value in outside.items())
    if value_range == SHARE:
        return [f"{given} out of range: {metric} is a share from 0 to 1 (e.g. 0.05 for 5%)"]
    if high is None:
        return [f"{given} out of range: {metric} is never below {low:g}"]
    if low is None:
        return [f"{given} out of range: {metric} is never above {high:g}"]
    return [f"{given} out of range: {metric} runs from {low:g} to {high:g}"]
