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
_providers: dict[str, tuple[Provider, str]] = {}


def register_metric(name: str, provider: Provider, *, description: str) -> None:
    """Declare a metric the oracle can judge, with a one-line description."""
    _providers[name] = (provider, description)


def metric_names() -> dict[str, str]:
    return {name: description for name, (_, description) in sorted(_providers.items())}


def measure(
    name: str, *, environment, start: datetime, end: datetime, cohort: str = "all"
) -> Measurement:
    """Measure one registered metric over [start, end) for a cohort."""
    if name not in _providers:
        raise KeyError(f"Unknown metric {name!r}; known: {', '.join(sorted(_providers))}")
    if cohort not in {"all", "test", "non_test"}:
        raise ValueError(f"Unknown cohort {cohort!r}")
    provider, _ = _providers[name]
    # Providers read tenant-owned rows: run them in the measured environment's scope, not
    # the caller's (a release watch runs in staging's scope and measures production).
    from institutions.tenancy import environment_scope

    if getattr(environment, "pk", None) is None:
        return provider(environment, start, end, cohort)
    with environment_scope(environment):
        return provider(environment, start, end, cohort)
