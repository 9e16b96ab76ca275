from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP

from institutions.middleware import ADMIN_ENVIRONMENT_SESSION_KEY
from institutions.models import Environment, Institution
from institutions.tenancy import environment_scope
from tests.factories import InstitutionFactory, MemberFactory, staff_user


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache, caches

    from flags.evaluation import local as process_flags
    from institutions.tenancy import clear_host_cache

    cache.clear()
    caches["fragments"].clear()  # this process's copies of rendered fragments
    clear_host_cache()
    process_flags.clear()  # ids are reused after rollbacks: forget what this process saw
    yield
    cache.clear()
    caches["fragments"].clear()
    clear_host_cache()
    process_flags.clear()


@dataclass
class Tenant:
    institution: Institution
    staging: Environment
    production: Environment

    def env(self, kind: str) -> Environment:
        return self.staging if kind == "staging" else self.production


def make_tenant(**kwargs) -> Tenant:
    institution = InstitutionFactory(**kwargs)
    return Tenant(
        institution,
        institution.environments.get(kind="staging"),
        institution.environments.get(kind="production"),
    )


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant()


def host_of(environment: Environment) -> str:
    return environment.host


def member_client(member) -> Client:
    """A test client signed in as the member, on the member's environment host."""
    from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY

    client = Client(HTTP_HOST=member.environment.host)
    session = client.session
    session[MEMBER_SESSION_KEY] = member.pk
    session[MEMBER_ENV_SESSION_KEY] = member.environment_id
    session.save()
    return client


def totp_now(user) -> str:
    device = user.totpdevice_set.get()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def staff_client(user, environment: Environment | None = None) -> Client:
    """A client signed in to the admin as a verified (second factor) staff user."""
    client = Client(HTTP_HOST="chimney.test")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = user.totpdevice_set.get().persistent_id
    if environment is not None:
        session[ADMIN_ENVIRONMENT_SESSION_KEY] = environment.pk
    session.save()
    return client


@pytest.fixture
def member(tenant):
    return MemberFactory(environment=tenant.production)


@pytest.fixture
def admin_staff(tenant):
    return staff_user(tenant.institution, "admin")


@pytest.fixture
def scoped(tenant):
    """Run the test body inside the tenant's production scope."""
    with environment_scope(tenant.production):
        yield tenant.production


@pytest.fixture
def staging(tenant):
    """Run the test body inside the tenant's staging scope (where the mock provider answers)."""
    with environment_scope(tenant.staging):
        yield tenant.staging


def pytest_collection_modifyitems(config, items):
    """Mark tests that use the shared Redis server `uses_redis`.

    They start real workers and the notifications drill restarts Redis, so dev.py runs them
    in a serial pass of their own after the rest of the suite has run in parallel.
    """
    import inspect

    uses_redis: dict[object, bool] = {}
    for item in items:
        module = item.module
        if module not in uses_redis:
            try:
                uses_redis[module] = "require_redis" in inspect.getsource(module)
            except (OSError, TypeError):
                uses_redis[module] = False
        if item.get_closest_marker("redis") or uses_redis[module]:
            item.add_marker(pytest.mark.uses_redis)


@pytest.fixture(autouse=True)
def _default_urlconf_after_test():
    """A request served outside Django's test client (a WSGI call, a live server thread)
    may leave its host's URLconf active on this thread: the next test starts from the
    project's default again."""
    yield
    from django.urls import set_urlconf

    set_urlconf(None)
