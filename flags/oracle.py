"""The oracle: rules over metrics give pass, fail or inconclusive, with the numbers behind it.

One implementation for flag rollouts, test plans and post-deploy release watches.

Comparators:
- "lower" is better (5xx rate, latency, delivery failures): pass when value < pass
  threshold; fail when value >= fail threshold; in between, inconclusive.
- "higher" is better (a selection rate): pass when value > pass threshold; fail when
  value <= fail threshold; in between, inconclusive.
A measurement with no value, or with fewer observations than the rule's minimum sample,
is inconclusive whatever the value. Combined: fail if any rule fails; pass only if every
rule passes (and there is at least one); otherwise inconclusive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from institutions import metrics

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class RuleSpec:
    """An oracle rule given in code (OracleRule rows have the same attributes)."""

    metric: str
    comparator: str  # "lower" | "higher"
    pass_threshold: float
    fail_threshold: float
    min_sample: int = 100
    window_minutes: int = 0
    cohort: str = "all"
    name: str = ""


#: The issue's default: the 5xx rate passes under 1%, fails at 5% or more, on >= 100 requests.
DEFAULT_5XX_RULE = RuleSpec("http_5xx_rate", "lower", 0.01, 0.05, 100, 0, "all", "5xx rate")


@dataclass(frozen=True)
class RuleResult:
    metric: str
    cohort: str
    value: float | None
    sample: int
    pass_threshold: float
    fail_threshold: float
    min_sample: int
    verdict: str
    detail: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "pass" | "fail" | "inconclusive"
    results: tuple[RuleResult, ...]
    start: datetime
    end: datetime

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "results": [r.as_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        """The verdict as_dict() gave (extra keys, e.g. a history entry's, are ignored)."""
        return cls(
            verdict=data["verdict"],
            results=tuple(RuleResult(**result) for result in data["results"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
        )

    def summary(self) -> str:
        lines = [f"{self.verdict.upper()} ({self.start:%Y-%m-%d %H:%M} - {self.end:%H:%M})"]
        lines += [f"  {r.verdict}: {r.metric} [{r.cohort}] {r.detail}" for r in self.results]
        return "\n".join(lines)


def compare(comparator: str, value: float, pass_threshold: float, fail_threshold: float) -> str:
    """The verdict of one value under a comparator (see the module docstring)."""
    if comparator == "lower":
        if value < pass_threshold:
            return PASS
        return FAIL if value >= fail_threshold else INCONCLUSIVE
    if comparator == "higher":
        if value > pass_threshold:
            return PASS
        return FAIL if value <= fail_threshold else INCONCLUSIVE
    raise ValueError(f"Unknown comparator {comparator!r}")


def judge_rule(rule, *, environment, start: datetime, end: datetime) -> RuleResult:
    window = int(getattr(rule, "window_minutes", 0) or 0)
    rule_start = max(start, end - timedelta(minutes=window)) if window else start
    cohort = getattr(rule, "cohort", "all") or "all"

    def result(value, sample, verdict, detail):
        return RuleResult(
            rule.metric,
            cohort,
            value,
            sample,
            float(rule.pass_threshold),
            float(rule.fail_threshold),
            int(rule.min_sample),
            verdict,
            detail,
        )

    try:
        measured = metrics.measure(
            rule.metric, environment=environment, start=rule_start, end=end, cohort=cohort
        )
    except (KeyError, ValueError) as exc:
        return result(None, 0, INCONCLUSIVE, str(exc).strip("'\""))
    detail = measured.detail or f"value {measured.value} on {measured.sample}"
    if measured.value is None:
        return result(None, measured.sample, INCONCLUSIVE, f"no data: {detail}")
    if measured.sample < rule.min_sample:
        return result(
            measured.value,
            measured.sample,
            INCONCLUSIVE,
            f"sample {measured.sample} below the minimum {rule.min_sample}: {detail}",
        )
    verdict = compare(
        rule.comparator, measured.value, float(rule.pass_threshold), float(rule.fail_threshold)
    )
    return result(measured.value, measured.sample, verdict, detail)


def combine(verdicts: Iterable[str]) -> str:
    verdicts = list(verdicts)
    if FAIL in verdicts:
        return FAIL
    if verdicts and all(v == PASS for v in verdicts):
        return PASS
    return INCONCLUSIVE


def oracle_judge(*, environment, rules, start: datetime, end: datetime) -> Verdict:
    """Judge every rule over [start, end) in the environment and combine the verdicts."""
    results = tuple(
        judge_rule(rule, environment=environment, start=start, end=end) for rule in rules
    )
    return Verdict(combine(r.verdict for r in results), results, start, end)


def rules_for(environment, group: str) -> list:
    """The environment's OracleRule rows of a group (e.g. "rollout", "release")."""
    from flags.models import OracleRule

    return list(OracleRule.objects.filter(environment=environment, group=group))
