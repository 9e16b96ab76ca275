"""Flags across processes: a kill made in a Celery worker reaches this process's copy."""

from __future__ import annotations

import uuid

import pytest
import redis
import waffle

from flags.services.rollouts import rollout_start
from institutions.tenancy import environment_scope
from tests.celery_worker import Worker, wait_until
from tests.factories import MemberFactory, staff_user
from tests.flags.factories import FlagFactory, OracleRuleFactory
from tests.flags.test_flags import member_request
from tests.flags.test_rollouts import traffic
from tests.services import require_redis


@pytest.fixture
def shared_cache(settings):
    """This process and the worker share one Redis cache, as web and workers do."""
    url = require_redis()
    redis.Redis.from_url(url).flushdb()
    settings.CACHES = {
        "default": {
            "BACKEND": "chimney.cache.ChimneyRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "chimney",  # the worker's (settings: CACHE_KEY_PREFIX)
        }
    }
    return url


@pytest.fixture
def worker(shared_cache, tmp_path, transactional_db):
    w = Worker(
        shared_cache,
        extra_env={"EMAIL_URL": f"filemail:///{tmp_path}"},
        queue=f"test-{uuid.uuid4().hex}",
    ).start()
    yield w
    w.stop()


def _failing_rollout(env, admin, name):
    FlagFactory(environment=env.institution.environments.get(kind="staging"), name=name)
    with environment_scope(env):
        flag = FlagFactory(environment=env, name=name, test_cohort=True)
        return rollout_start(environment=env, flag=flag, actor=admin, step_minutes=0)


def _active(member, name) -> bool:
    with environment_scope(member.environment):
        return waffle.flag_is_active(member_request(member), name)


@pytest.mark.redis
@pytest.mark.slow
def test_kill_in_a_worker__reaches_this_process__next_request_or_within_the_interval(
    worker, tenant, settings
):
    env = tenant.production
    admin = staff_user(tenant.institution, "admin", email="admin@cu.example")
    tester = MemberFactory(environment=env, is_test=True)
    with environment_scope(env):
        OracleRuleFactory(environment=env, group="rollout", name="5xx")
    strict = _failing_rollout(env, admin, "checked_every_request")
    relaxed = _failing_rollout(env, admin, "checked_every_half_second")
    with environment_scope(env):
        traffic(env, count=200, errors=40, at=strict.step_started_at)  # both fail the oracle
    # This process evaluates both and keeps the environment's flags in memory.
    assert _active(tester, "checked_every_request") is True
    assert _active(tester, "checked_every_half_second") is True

    # Checking the version on every request: the very next request sees the kill.
    settings.FLAGS_VERSION_CHECK_SECONDS = 0
    result = worker.send_task("flags.rollout_advance", args=[env.pk, strict.pk])
    assert result.get(timeout=60) == "failed", worker.output()
    assert _active(tester, "checked_every_request") is False

    # Trusting the copy for half a second: the kill arrives once that has passed.
    settings.FLAGS_VERSION_CHECK_SECONDS = 0.5
    assert _active(tester, "checked_every_half_second") is True  # refreshes the copy
    result = worker.send_task("flags.rollout_advance", args=[env.pk, relaxed.pk])
    assert result.get(timeout=60) == "failed", worker.output()
    wait_until(lambda: _active(tester, "checked_every_half_second") is False, timeout=15)
