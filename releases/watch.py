"""The watch's view of the oracle (flags.oracle): rules in, a verdict with its numbers out.

One oracle serves flag rollouts and release watches; this module only adapts the
institution's watch rules to it and turns its verdict into JSON for the evidence pack.
"""

from __future__ import annotations

import datetime as dt

from flags.oracle import FAIL, INCONCLUSIVE, PASS, RuleSpec, oracle_judge
from releases.models.policy import WATCH_COMPARATORS

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "judge", "oracle", "rules_from_policy"]
RESULT_FIELDS = (
    "metric",
    "cohort",
    "value",
    "sample",
    "pass_threshold",
    "fail_threshold",
    "min_sample",
    "verdict",
    "detail",
)


def rules_from_policy(policy) -> list[RuleSpec]:
    """The institution's watch rules as oracle rules (ReleasePolicy.clean checks them)."""
    return [
        RuleSpec(
            metric=r["metric"],
            comparator=WATCH_COMPARATORS[r.get("comparator", "lower")],
            pass_threshold=float(r["pass_threshold"]),
            fail_threshold=float(r["fail_threshold"]),
            min_sample=int(r.get("min_sample", 0)),
            cohort=r.get("cohort", "all"),
            name=r.get("name", r["metric"]),
        )
        for r in policy.watch_rules
    ]


def oracle():
    """The one oracle (flags), also used by flag rollouts and test plans."""
    return oracle_judge


def judge(*, environment, rules, start: dt.datetime, end: dt.datetime):
    return oracle()(environment=environment, rules=rules, start=start, end=end)


def verdict_record(verdict, *, at: dt.datetime) -> dict:
    """The verdict as JSON, with every rule's numbers (for the release and its evidence)."""
    return {
        "at": at.isoformat(),
        "verdict": verdict.verdict,
        "detail": getattr(verdict, "detail", ""),
        "results": [
            {name: _plain(getattr(result, name, None)) for name in RESULT_FIELDS}
            for result in verdict.results
        ],
    }


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def explain(record: dict) -> str:
    failing = [r for r in record.get("results", []) if r.get("verdict") == FAIL]
    parts = [
        f"{r['metric']} = {r['value']} on {r['sample']} (fails at {r['fail_threshold']})"
        + (f": {r['detail']}" if r.get("detail") else "")
        for r in failing
    ]
    return "; ".join(parts) or record.get("detail", "") or record.get("verdict", "")
