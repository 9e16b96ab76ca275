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


class ProductionTraffic:
    """Real production metrics for the real oracle, as a test states them.

    `traffic.rate, traffic.sample = 0.12, 400` writes one minute of 400 requests of which
    12% answered 5xx (fast ones, p95 50 ms), plus 60 finished deliveries with no failure,
    inside the watch window that starts at the deploy. Calls to the oracle are recorded.
    """

    def __init__(self, environment, minute):
        self.environment, self.minute = environment, minute
        self.rate, self._sample, self.calls = 0.0, 0, []
        self._deliveries = False

    @property
    def sample(self) -> int:
        return self._sample

    @sample.setter
    def sample(self, count: int) -> None:
        from flags.models import RequestMetric
        from institutions.tenancy import environment_scope
        from notifications.models import Delivery
        from tests.notifications.factories import DeliveryFactory

        self._sample = count
        with environment_scope(self.environment):
            RequestMetric.objects.filter(environment=self.environment).delete()
            RequestMetric.objects.create(
                environment=self.environment,
                minute=self.minute,
                cohort="member",
                count=count,
                errors=round(self.rate * count),
                latency_ms_sum=50.0 * count,
                le_50=count,
            )
            if not self._deliveries:
                DeliveryFactory.create_batch(60, environment=self.environment)
                Delivery.objects.filter(environment=self.environment).update(
                    sent_at=self.minute, updated_at=self.minute
                )
                self._deliveries = True


@pytest.fixture
def oracle(tenant, monkeypatch):
    """The real oracle over real metric rows (named for what the tests talk to)."""

    from flags.oracle import oracle_judge
    from releases import watch
    from tests.releases.test_release_flow import TUESDAY_23

    traffic = ProductionTraffic(tenant.production, TUESDAY_23)  # the deploy minute

    def recording(**kwargs):
        traffic.calls.append(
            (kwargs["environment"], kwargs["rules"], kwargs["start"], kwargs["end"])
        )
        return oracle_judge(**kwargs)

    monkeypatch.setattr(watch, "oracle", lambda: recording)
    return traffic


@pytest.fixture
def products(tenant):
    """Staging's offer products: the demo's HELOC, home equity loan, refinance, PMI removal."""
    from homes.demo_homes import PRODUCTS
    from homes.models import OfferProduct
    from homes.services import offer_product_save
    from institutions.tenancy import environment_scope

    with environment_scope(tenant.staging):
        for spec in PRODUCTS:
            offer_product_save(
                environment=tenant.staging,
                product=OfferProduct(environment=tenant.staging, **spec),
                actor_label="test",
            )


@pytest.fixture
def calendar_server(tmp_path):
    """A real CalDAV server (Radicale) for the officers' calendars."""
    from tests.homes.caldav_server import Radicale

    server = Radicale(tmp_path / "radicale").start()
    yield server
    server.stop()
