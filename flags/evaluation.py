"""Flag evaluation for the signed-in member: one cache round trip per request for all flags.

An environment's flags live in the cache as one entry (name -> plain state, built from two
queries on a miss). The first evaluation in a request reads that entry together with the
member's impressions of the day in a single `get_many`; later evaluations in the same
request read the request's copy. Percentages are bucketed by a hash of (environment,
flag, member): the same answer on every device, with no randomness and no cookie.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from institutions.tenancy import current_environment

ON, OFF = "on", "off"
SNAPSHOT_TTL = 24 * 3600
IMPRESSION_TTL = 26 * 3600


@dataclass(frozen=True)
class FlagState:
    pk: int
    name: str
    everyone: bool | None
    percent: float | None
    test_cohort: bool
    staff: bool
    member_ids: frozenset[int]
    killed: bool


def snapshot_key(environment_id: int) -> str:
    return f"flags:env:{environment_id}:snapshot"


def impressions_key(environment_id: int, member_id: int, day: date) -> str:
    return f"flags:env:{environment_id}:impressions:{member_id}:{day.isoformat()}"


def load_snapshot_from_db(environment) -> dict[str, FlagState]:
    """Two queries: the flags, and the named members of all of them."""
    from flags.models import Flag

    flags = list(Flag.objects.filter(environment=environment))
    members: dict[int, set[int]] = {f.pk: set() for f in flags}
    through = Flag.members.through
    for flag_id, member_id in through.objects.filter(flag__environment=environment).values_list(
        "flag_id", "member_id"
    ):
        members[flag_id].add(member_id)
    return {
        f.name: FlagState(
            pk=f.pk,
            name=f.name,
            everyone=f.everyone,
            percent=float(f.percent) if f.percent is not None else None,
            test_cohort=f.test_cohort,
            staff=f.staff,
            member_ids=frozenset(members[f.pk]),
            killed=f.killed,
        )
        for f in flags
    }


def snapshot_invalidate(environment_id: int) -> None:
    """Drop an environment's cached flags now, and again once the transaction commits
    (a request that refilled the cache from the old rows in between is overwritten)."""
    key = snapshot_key(environment_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _snapshot_fill(environment) -> dict[str, FlagState]:
    snapshot = load_snapshot_from_db(environment)
    cache.set(snapshot_key(environment.pk), snapshot, SNAPSHOT_TTL)
    return snapshot


def snapshot(environment) -> dict[str, FlagState]:
    """The environment's flags, outside a request (tasks, commands): one cache read."""
    cached = cache.get(snapshot_key(environment.pk))
    return cached if cached is not None else _snapshot_fill(environment)


def bucket(environment_id: int, flag_name: str, member_id: int) -> float:
    """The member's position in [0, 100) for this flag: stable across devices and processes."""
    digest = hashlib.sha256(f"{environment_id}:{flag_name}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 / 100


def member_day(environment) -> date:
    return timezone.localtime(timezone.now(), environment.institution.tz).date()


@dataclass
class RequestFlags:
    """What one request knows about flags: read once, impressions collected for the end."""

    environment: object
    member: object | None
    is_staff: bool
    flags: dict[str, FlagState]
    seen_today: dict[str, str]  # flag name -> variant already recorded today
    day: date
    results: dict[str, bool] = field(default_factory=dict)
    new_impressions: dict[str, str] = field(default_factory=dict)


def _request_member(request):
    member = getattr(request, "member", None)
    return member if member else None


def _request_is_staff(request) -> bool:
    from homes.middleware import VISITED_BY_SESSION_KEY

    user = getattr(request, "user", None)
    if getattr(user, "is_staff", False):
        return True
    session = getattr(request, "session", None)
    return bool(session is not None and session.get(VISITED_BY_SESSION_KEY))


def request_flags(request) -> RequestFlags | None:
    """This request's flags (loaded on first use with one `get_many`), or None off-tenant."""
    state = getattr(request, "_chimney_flags", None)
    if state is not None:
        return state
    environment = getattr(request, "environment", None) or current_environment()
    if environment is None:
        return None
    member = _request_member(request)
    day = member_day(environment)
    keys = [snapshot_key(environment.pk)]
    if member is not None:
        keys.append(impressions_key(environment.pk, member.pk, day))
    found = cache.get_many(keys)
    flags = found.get(keys[0])
    if flags is None:
        flags = _snapshot_fill(environment)
    seen = found.get(keys[1], {}) if member is not None else {}
    state = RequestFlags(environment, member, _request_is_staff(request), flags, seen, day)
    request._chimney_flags = state
    return state


def decide(state: FlagState | None, *, environment_id: int, member, is_staff: bool) -> bool:
    """The flag's answer for this member: kill switch, everyone, targeting, then percent."""
    if state is None or state.killed:
        return False
    if state.everyone is not None:
        return state.everyone
    if is_staff and state.staff:
        return True
    if member is None:
        return False
    if member.pk in state.member_ids:
        return True
    if state.test_cohort and member.is_test:
        return True
    if state.percent:
        return bucket(environment_id, state.name, member.pk) < state.percent
    return False


def evaluate(request, name: str) -> bool:
    """Evaluate one flag for the request's member and note the impression."""
    rf = request_flags(request)
    if rf is None:
        return False
    if name in rf.results:
        return rf.results[name]
    active = decide(
        rf.flags.get(name),
        environment_id=rf.environment.pk,
        member=rf.member,
        is_staff=rf.is_staff,
    )
    rf.results[name] = active
    if rf.member is not None and name in rf.flags:
        variant = ON if active else OFF
        if rf.seen_today.get(name) != variant:
            rf.new_impressions[name] = variant
    return active


def impressions_flush(request) -> int:
    """Record the request's new impressions (first per member, flag and day); returns count."""
    rf = getattr(request, "_chimney_flags", None)
    if rf is None or not rf.new_impressions or rf.member is None:
        return 0
    from flags.services.events import event_record_many

    now = timezone.now()
    event_record_many(
        environment=rf.environment,
        rows=[
            {
                "name": "flag_impression",
                "member": rf.member,
                "properties": {"flag": name, "variant": variant},
                "occurred_at": now,
            }
            for name, variant in sorted(rf.new_impressions.items())
        ],
        source="server",
    )
    seen = {**rf.seen_today, **rf.new_impressions}
    cache.set(impressions_key(rf.environment.pk, rf.member.pk, rf.day), seen, IMPRESSION_TTL)
    count = len(rf.new_impressions)
    rf.seen_today, rf.new_impressions = seen, {}
    return count
