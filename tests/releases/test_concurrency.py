"""Releases made at the same moment, on PostgreSQL, each in its own thread and connection:
each gets its own number (they are MAX + 1 per environment)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from institutions.services import branding_update
from releases.models import Release
from releases.services import create as create_module
from releases.services import policy_for, release_create
from tests.conftest import make_tenant
from tests.factories import staff_user
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_release_create__two_at_once__each_gets_the_next_number(monkeypatch):
    require_postgres()
    tenant = make_tenant()
    author = staff_user(tenant.institution, "marketing")
    policy_for(tenant.institution)
    branding_update(environment=tenant.staging, actor=None, primary_color="#00aa00")
    highest = create_module._max_number

    def slow_highest(environment):
        # Without the lock both threads would read the same MAX during this pause.
        top = highest(environment)
        time.sleep(0.5)
        return top

    monkeypatch.setattr(create_module, "_max_number", slow_highest)
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def run(i):
        try:
            barrier.wait(timeout=30)
            outcomes[i] = release_create(
                environment=tenant.staging, actor=author, title=f"Release from thread {i}"
            )
        except Exception as error:  # shown by the assertion
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert all(isinstance(o, Release) for o in outcomes), outcomes
    assert sorted(o.number for o in outcomes) == [1, 2]
    numbers = Release._base_manager.filter(environment=tenant.staging).values_list(
        "number", flat=True
    )
    assert sorted(numbers) == [1, 2]
