import pytest
from django.db import connection

from institutions import promotion
from tests.releases import models as test_models


@pytest.fixture(scope="session")
def _promotable_tables(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        test_models.create_tables(connection)


@pytest.fixture
def promotables(_promotable_tables, monkeypatch, settings, tmp_path):
    """Branding plus two test models (with a foreign key, m2m, file and secret) registered."""
    monkeypatch.setattr(promotion, "_registry", dict(promotion._registry))
    test_models.register(promotion)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return test_models


class Clock:
    """A settable `timezone.now()` for the release services (deploy windows are about time)."""

    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment

    def set(self, moment):
        self.moment = moment


@pytest.fixture
def clock(monkeypatch):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    # A Monday afternoon in New York (the test institutions' time zone).
    clock = Clock(dt.datetime(2025, 3, 3, 14, 0, tzinfo=ZoneInfo("America/New_York")))
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def people(tenant):
    """Staff of the tenant: a marketing author, one signer per role, and an admin."""
    from types import SimpleNamespace

    from tests.factories import staff_user

    inst = tenant.institution
    return SimpleNamespace(
        marketing=staff_user(inst, "marketing", email="mara@cu.test"),
        it=staff_user(inst, "it", email="ivan@cu.test"),
        lending=staff_user(inst, "lending", email="lena@cu.test"),
        marketing2=staff_user(inst, "marketing", email="mo@cu.test"),
        admin=staff_user(inst, "admin", email="ada@cu.test"),
    )
