"""The active environment (tenant): host resolution, scope activation, tenant-aware tasks.

Tenant-owned models use django-scopes' ScopedManager, so a query with no active
environment raises ScopeError instead of reading every tenant's rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_scopes import get_scope, scope, scopes_disabled

from institutions.models import Domain, Environment

logger = logging.getLogger(__name__)


@contextmanager
def environment_scope(environment: Environment) -> Iterator[Environment]:
    """Activate one environment for tenant-owned queries (never None: that would unscope)."""
    if not isinstance(environment, Environment) or environment.pk is None:
        raise ValueError("environment_scope needs a saved Environment.")
    with scope(environment=environment):
        yield environment


class EnvironmentsFailed(Exception):
    """for_each_environment: some environments raised (each logged, the others ran).

    `failed`: environment id -> its exception; `results`: the others' results by id. Raised
    from the first failure, so a Celery task that runs it is still marked failed.
    """

    def __init__(self, failed: dict[int, BaseException], results: dict, names: dict[int, str]):
        self.failed = failed
        self.results = results
        listed = "; ".join(
            f"{names[pk]} (id {pk}): {type(exc).__name__}: {exc}" for pk, exc in failed.items()
        )
        total = len(failed) + len(results)
        super().__init__(f"{len(failed)} of {total} environments failed: {listed}")

    def __reduce__(self):
        # Celery hands task_failure receivers the exception itself only if it survives a
        # pickle round trip, else a stand-in without `failed` (and the failed environments
        # could not be recorded one by one). The copy keeps the message and each failure
        # as text: the environments' exceptions and results may not pickle.
        failed = {pk: f"{type(exc).__name__}: {exc}" for pk, exc in self.failed.items()}
        return _environments_failed, (self.args[0], failed)


def _environments_failed(message: str, failed: dict[int, str]) -> EnvironmentsFailed:
    """An unpickled EnvironmentsFailed: its message, and each failure as an Exception."""
    copy = EnvironmentsFailed.__new__(EnvironmentsFailed)
    Exception.__init__(copy, message)
    copy.failed = {pk: Exception(text) for pk, text in failed.items()}
    copy.results = {}
    return copy


def for_each_environment(fn: Callable[[Environment], object], *, atomic: bool) -> dict:
    """Call fn(environment) for every environment inside its scope (beat tasks that visit
    them all), each call in a transaction of its own when `atomic`; results by id.

    One environment's failure stops only that environment: it is logged, the others still
    run, and EnvironmentsFailed is raised at the end (a beat task is not stopped for every
    tenant by one tenant's bad row, and never fails silently either).
    """
    with scopes_disabled():
        environments = list(Environment.objects.select_related("institution"))
    out: dict = {}
    failed: dict[int, BaseException] = {}
    for environment in environments:
        try:
            with environment_scope(environment), transaction.atomic() if atomic else nullcontext():
                out[environment.pk] = fn(environment)
        except Exception as exc:
            logger.exception(
                "%s failed in environment %s (id %s)",
                getattr(fn, "__qualname__", fn),
                environment,
                environment.pk,
            )
            failed[environment.pk] = exc
    if failed:
        names = {env.pk: str(env) for env in environments}
        first = next(iter(failed.values()))
        raise EnvironmentsFailed(failed, out, names) from first
    return out


def current_environment() -> Environment | None:
    value = get_scope().get("environment")
    return value if isinstance(value, Environment) else None


@dataclass(frozen=True)
class HostMatch:
    kind: str  # "platform" or "tenant"
    environment: Environment | None = None


def _strip_port(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


_HOST_CACHE_SECONDS = 5
_host_cache: dict[str, tuple[float, HostMatch | None]] = {}


def resolve_host_cached(host: str) -> HostMatch | None:
    """resolve_host with a short per-process memory: hosts change rarely, requests often."""
    name = _strip_port(host)
    now = time.monotonic()
    hit = _host_cache.get(name)
    if hit is not None and hit[0] > now:
        return hit[1]
    match = resolve_host(name)
    if len(_host_cache) > 10_000:  # unknown hosts must not grow it without bound
        _host_cache.clear()
    _host_cache[name] = (now + _HOST_CACHE_SECONDS, match)
    return match


def clear_host_cache() -> None:
    _host_cache.clear()


def resolve_host(host: str) -> HostMatch | None:
    """Map a request host to the platform or to one environment; None when unknown."""
    name = _strip_port(host)
    base = settings.BASE_DOMAIN.lower()
    if name == base:
        return HostMatch("platform")
    environments = Environment.objects.select_related("institution")
    if name.endswith("." + base):
        prefix = name[: -len(base) - 1]
        kind = Environment.Kind.PRODUCTION
        if prefix.endswith(".staging"):
            prefix, kind = prefix[: -len(".staging")], Environment.Kind.STAGING
        if not prefix or "." in prefix:
            return None
        env = environments.filter(institution__slug=prefix, kind=kind).first()
        return HostMatch("tenant", env) if env else None
    domain = Domain.objects.select_related("environment__institution").filter(domain=name).first()
    return HostMatch("tenant", domain.environment) if domain else None


# How a task that sends email waits out a mail server that is down or answers 4xx (OSError,
# smtplib's errors included): tried again with exponential backoff and jitter, at most ten
# minutes apart, and never lost with a worker. Each task sets its own max_retries.
MAIL_RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
}


def tenant_task(*, name: str, **options):
    """Declare a Celery task that takes an environment id first and runs inside its scope."""

    def decorator(fn):
        def run(self, environment_id: int, *args, **kwargs):
            environment = Environment.objects.select_related("institution").get(pk=environment_id)
            with environment_scope(environment):
                return fn(self, environment, *args, **kwargs)

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        run.__module__ = fn.__module__
        run.__qualname__ = fn.__qualname__
        # For the check that tasks take ids and plain values; it also marks a tenant task.
        run.chimney_function = fn
        return shared_task(name=name, bind=True, **options)(run)

    return decorator


def tenant_task_environment_id(task, args, kwargs) -> object | None:
    """The environment id a tenant_task was called with (None for any other task)."""
    if getattr(getattr(task, "run", None), "chimney_function", None) is None:
        return None
    if args:
        return args[0]
    return (kwargs or {}).get("environment_id")


class TenantCommand(BaseCommand):
    """A management command that runs inside one institution's environment."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--institution", required=True, help="Institution slug.")
        parser.add_argument(
            "--environment", required=True, choices=[k for k, _ in Environment.Kind.choices]
        )

    def handle(self, *args, **options):
        environment = (
            Environment.objects.select_related("institution")
            .filter(institution__slug=options["institution"], kind=options["environment"])
            .first()
        )
        if environment is None:
            raise CommandError(f"No institution with slug {options['institution']!r}.")
        rest = {k: v for k, v in options.items() if k not in ("institution", "environment")}
        with environment_scope(environment):
            return self.handle_tenant(environment, *args, **rest)

    def handle_tenant(self, environment: Environment, *args, **options):
        raise NotImplementedError
