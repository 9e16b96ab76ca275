"""Flag evaluation for the signed-in member: no cache round trip on most requests, never
more than one on a warm cache, and no query.

Each process keeps its environments' flags in memory (a plain name -> state dict), tagged
with the environment's *flags version*: a short token in the cache that every change
replaces (`snapshot_invalidate`). A process trusts its copy for FLAGS_VERSION_CHECK_SECONDS
(default 1 s), then checks the token again with one `get_many` that also fetches the
member's impressions of the day when the process does not know them yet. When the token
changed, the flags come from the cache's copy tagged with the same token, or from two
queries. So a change or a kill switch is seen at once by the process that made it and
within the interval by every other process (0 checks on every request).

Percentages are bucketed by a hash of (environment, flag, member): the same answer on
every device, with no randomness and no cookie. Impressions are recorded once per member,
flag, variant and day, in one write per request, remembered by the process and the cache.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from institutions.tenancy import current_environment

ON, OFF = "on", "off"
VERSION_TTL = 30 * 24 * 3600
SNAPSHOT_TTL = 24 * 3600
IMPRESSION_TTL = 26 * 3600
SEEN_MEMORY = 20_000  # (environment, member, day) entries a process remembers


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


def version_key(environment_id: int) -> str:
    return f"flags:env:{environment_id}:version"


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


@dataclass
class _Copy:
    version: str
    flags: dict[str, FlagState]
    checked: float  # time.monotonic() of the last version check


class ProcessFlags:
    """What one process remembers: each environment's flags (by version) and the
    impressions it has seen recorded today. The module holds one (`local`)."""

    def __init__(self) -> None:
        self.copies: dict[int, _Copy] = {}
        self.seen: OrderedDict[tuple[int, int, date], dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self, environment_id: int) -> None:
        self.copies.pop(environment_id, None)

    def clear(self) -> None:
        self.copies.clear()
        with self._lock:
            self.seen.clear()

    def seen_get(self, key) -> dict[str, str] | None:
        return self.seen.get(key)

    def seen_put(self, key, value: dict[str, str]) -> None:
        with self._lock:
            self.seen[key] = value
            self.seen.move_to_end(key)
            while len(self.seen) > SEEN_MEMORY:
                self.seen.popitem(last=False)


local = ProcessFlags()


def _check_seconds() -> float:
    return float(getattr(settings, "FLAGS_VERSION_CHECK_SECONDS", 1.0))


def _new_version() -> str:
    return secrets.token_hex(8)


def _bump(environment_id: int) -> None:
    local.forget(environment_id)
    cache.set(version_key(environment_id), _new_version(), VERSION_TTL)


def snapshot_invalidate(environment_id: int) -> None:
    """Give the environment's flags a new version now, and again once the transaction
    commits (a request that read the old rows in between is superseded)."""
    _bump(environment_id)
    transaction.on_commit(lambda: _bump(environment_id))


def _load(environment, version: str | None, cached_snapshot=None) -> _Copy:
    """The flags for `version` (None: none set yet) from the cache's copy, else the database."""
    env_id = environment.pk
    if version is None:
        fresh = _new_version()
        version = fresh if cache.add(version_key(env_id), fresh, VERSION_TTL) else None
        if version is None:
            version = cache.get(version_key(env_id)) or fresh
        cached_snapshot = None
    if cached_snapshot is None:
        cached_snapshot = cache.get(snapshot_key(env_id))
    if isinstance(cached_snapshot, tuple) and cached_snapshot[0] == version:
        flags = cached_snapshot[1]
    else:
        flags = load_snapshot_from_db(environment)
        cache.set(snapshot_key(env_id), (version, flags), SNAPSHOT_TTL)
    copy = _Copy(version, flags, time.monotonic())
    local.copies[env_id] = copy
    return copy


def snapshot(environment) -> dict[str, FlagState]:
    """The environment's flags, outside a request (tasks, commands): one cache read."""
    copy = local.copies.get(environment.pk)
    version = cache.get(version_key(environment.pk))
    if copy is not None and version is not None and copy.version == version:
        return copy.flags
    return _load(environment, version).flags


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
    seen_from_cache: bool = False  # seen_today was read from the cache in this request
    results: dict[str, bool] = field(default_factory=dict)
    new_impressions: dict[str, str] = field(default_factory=dict)


def _request_member(request):
    member = getattr(request, "member", None)
    return member if member else None


def _request_is_staff(request) -> bool:
    from homes.middleware import VISITED_BY_SESSION_KEY

    session = getattr(request, "session", None)
    if session is not None:
        if session.get(VISITED_BY_SESSION_KEY):
            return True
        if SESSION_KEY not in session:
            # Staff sign in with the session: without a user in it (every member's
            # session) there is none, and request.user need not be loaded to learn it.
            return False
    user = getattr(request, "user", None)
    return bool(getattr(user, "is_staff", False))


def request_flags(request) -> RequestFlags | None:
    """This request's flags (at most one `get_many` on a warm cache), or None off-tenant."""
    state = getattr(request, "_chimney_flags", None)
    if state is not None:
        return state
    environment = getattr(request, "environment", None) or current_environment()
    if environment is None:
        return None
    env_id = environment.pk
    member = _request_member(request)
    day = member_day(environment)
    copy = local.copies.get(env_id)
    now = time.monotonic()
    keys = []
    check = copy is None or now - copy.checked >= _check_seconds()
    if check:
        keys.append(version_key(env_id))
        if copy is None:  # a process's first request: fetch the flags in the same trip
            keys.append(snapshot_key(env_id))
    seen_key = (env_id, member.pk, day) if member is not None else None
    seen = local.seen_get(seen_key) if seen_key is not None else {}
    if seen is None:
        keys.append(impressions_key(env_id, member.pk, day))
    found = cache.get_many(keys) if keys else {}
    if check:
        version = found.get(version_key(env_id))
        if copy is not None and version is not None and version == copy.version:
            copy.checked = now
        else:
            copy = _load(environment, version, found.get(snapshot_key(env_id)))
    from_cache = seen is None
    if from_cache:
        seen = dict(found.get(impressions_key(env_id, member.pk, day)) or {})
        local.seen_put(seen_key, seen)
    state = RequestFlags(
        environment, member, _request_is_staff(request), copy.flags, seen, day, from_cache
    )
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
    rf = getattr(request, "_chimney_flags", None) or request_flags(request)
    if rf is None:
        return False
    active = rf.results.get(name)
    if active is not None:
        return active
    state = rf.flags.get(name)
    active = decide(state, environment_id=rf.environment.pk, member=rf.member, is_staff=rf.is_staff)
    rf.results[name] = active
    record = rf.member is not None and state is not None
    if record and rf.is_staff:
        # Staff looking at a member's pages: as a test member (in production, the only
        # members staff may visit) it is that test member's test activity, recorded with
        # is_test, unless a staff-only rule gave the answer: that is what staff see, not the
        # member's impression. As any other member, it is not the member's activity.
        record = rf.member.is_test and active == decide(
            state, environment_id=rf.environment.pk, member=rf.member, is_staff=False
        )
    if record:
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

    key = impressions_key(rf.environment.pk, rf.member.pk, rf.day)
    seen = rf.seen_today
    new = rf.new_impressions
    if not rf.seen_from_cache:
        # This process's memory may lag another process's recording: ask the cache first.
        seen = {**seen, **(cache.get(key) or {})}
        new = {name: v for name, v in new.items() if seen.get(name) != v}
    if new:
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
                for name, variant in sorted(new.items())
            ],
            source="server",
        )
        seen = {**seen, **new}
        cache.set(key, seen, IMPRESSION_TTL)
    local.seen_put((rf.environment.pk, rf.member.pk, rf.day), seen)
    rf.seen_today, rf.new_impressions = seen, {}
    return len(new)
