"""A real worker process consumes tasks from Redis, and tenant tasks run in their scope."""

import uuid

import pytest
import redis
from django_scopes import scopes_disabled

from homes.models import MagicLinkToken
from tests.celery_worker import Worker, wait_until
from tests.factories import MemberFactory
from tests.services import require_redis


@pytest.fixture
def redis_url():
    url = require_redis()
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def worker(redis_url, tmp_path, transactional_db):
    queue = f"test-{uuid.uuid4().hex}"
    w = Worker(redis_url, extra_env={"EMAIL_URL": f"filemail:///{tmp_path}"}, queue=queue).start()
    w.mail_dir = tmp_path
    yield w
    w.stop()


@pytest.mark.redis
@pytest.mark.slow
def test_worker__real_process_on_redis__completes_a_task(worker, redis_url):
    result = worker.send_task("chimney.ping", args=["hello"])
    assert result.get(timeout=60) == "hello", worker.output()


@pytest.mark.redis
@pytest.mark.slow
def test_worker__tenant_task__runs_in_its_environment_and_sends_mail(worker, redis_url, tenant):
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    result = worker.send_task("homes.send_magic_link", args=[tenant.production.pk, member.pk])
    result.get(timeout=60)
    files = wait_until(lambda: list(worker.mail_dir.iterdir()))
    body = files[0].read_text()
    assert "ada@example.test" in body
    assert f"{tenant.production.base_url}/login/" in body
    with scopes_disabled():
        assert (
            MagicLinkToken.objects.filter(member=member, environment=tenant.production).count() == 1
        )


PLAIN = {
    int,
    str,
    float,
    bool,
    list[int],
    list[str],
    dict,
    "int",
    "str",
    "float",
    "bool",
    "list[int]",
    "list[str]",
    "dict",
    "int | None",
    "str | None",
}


def test_tasks__take_ids_and_plain_values__never_model_instances():
    import inspect

    from chimney.celery import app

    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert ours, "no project tasks registered"
    for task in ours:
        fn = getattr(task.run, "chimney_function", task.run)
        params = list(inspect.signature(fn).parameters.values())
        if getattr(task.run, "chimney_function", None):
            params = params[2:]  # (self, environment): the environment is loaded from its id
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            assert param.annotation in PLAIN, (
                f"{task.name}: parameter {param.name!r} must be an id or a plain value, "
                f"annotated as such (got {param.annotation!r})"
            )
