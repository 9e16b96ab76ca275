"""Factories of the homes models (registered for the generic tenancy and isolation tests)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.core.cache import cache
from django.utils import timezone

from homes.appointment_selectors import bookable_cache_key
from homes.models import (
    Appointment,
    AppointmentSettings,
    HomeSettings,
    Lien,
    LoanOfficer,
    MemberOffer,
    OfferMatch,
    OfferProduct,
    OfficerAvailability,
    Property,
    RefreshChunk,
    RefreshRun,
    Sale,
    Valuation,
    VendorValue,
)
from homes.selectors import home_settings_cache_key
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory, TenantFactory, tenant_factory


def institution_today(environment) -> datetime.date:
    """Today as the homes services take it: the date where the environment's institution
    is, not the machine's or UTC's."""
    return environment.institution.today()


def years_after(day: datetime.date, years: int) -> datetime.date:
    """The same day ``years`` later (or earlier); February 29 becomes February 28."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def zone_off_utc_date() -> str:
    """A time zone whose date differs from UTC's now, whatever the hour: Pacific/Kiritimati
    (UTC+14) is a day ahead from 10:00 UTC, Pacific/Pago_Pago (UTC-11) a day behind until
    11:00 UTC."""
    return "Pacific/Kiritimati" if timezone.now().hour >= 10 else "Pacific/Pago_Pago"


@tenant_factory(Property)
class PropertyFactory(TenantFactory):
    class Meta:
        model = Property

    member = factory.LazyAttribute(lambda o: MemberFactory(environment=o.environment))
    external_id = factory.Sequence(lambda n: f"P{n:06d}")
    street = factory.Sequence(lambda n: f"{100 + n} Pine Street")
    city = "Seattle"
    state = "WA"
    postal_code = "98103"
    latitude = 47.66
    longitude = -122.34
    bedrooms = 3
    bathrooms = Decimal("2.00")
    living_sqft = 1800
    lot_sqft = 5000
    year_built = 1990
    owner_occupied = True
    purchase_date = datetime.date(2015, 6, 1)
    purchase_price = Decimal("400000.00")


@tenant_factory(Lien)
class LienFactory(TenantFactory):
    class Meta:
        model = Lien

    property = factory.LazyAttribute(lambda o: PropertyFactory(environment=o.environment))
    position = 1
    kind = Lien.Kind.FIRST_MORTGAGE
    original_amount = Decimal("200000.00")
    rate = Decimal("6.000")
    term_months = 360
    origination_date = datetime.date(2020, 1, 1)
    balance = Decimal("200000.00")
    balance_as_of = factory.LazyAttribute(lambda o: institution_today(o.environment))


@tenant_factory(Valuation)
class ValuationFactory(TenantFactory):
    class Meta:
        model = Valuation

    property = factory.LazyAttribute(lambda o: PropertyFactory(environment=o.environment))
    provider = "mock"
    value = Decimal("300000")
    low = Decimal("280000")
    high = Decimal("320000")
    confidence = 80
    fsd = Decimal("0.0700")
    as_of = factory.Sequence(lambda n: datetime.date(2020, 1, 1) + datetime.timedelta(days=n))


@tenant_factory(VendorValue)
class VendorValueFactory(TenantFactory):
    class Meta:
        model = VendorValue

    property = factory.LazyAttribute(lambda o: PropertyFactory(environment=o.environment))
    value = Decimal("310000")
    fsd = Decimal("0.0500")
    as_of = factory.Sequence(lambda n: datetime.date(2020, 1, 1) + datetime.timedelta(days=n))


@tenant_factory(Sale)
class SaleFactory(TenantFactory):
    class Meta:
        model = Sale

    price = Decimal("450000")
    latitude = 47.66
    longitude = -122.34
    living_sqft = 1800
    year_built = 1980


@tenant_factory(RefreshRun)
class RefreshRunFactory(TenantFactory):
    class Meta:
        model = RefreshRun

    as_of = factory.LazyAttribute(lambda o: institution_today(o.environment))


@tenant_factory(RefreshChunk)
class RefreshChunkFactory(TenantFactory):
    class Meta:
        model = RefreshChunk

    run = factory.LazyAttribute(lambda o: RefreshRunFactory(environment=o.environment))
    after_id = 0
    last_id = 100
    cursor = 0


@tenant_factory(HomeSettings)
def home_settings_factory(environment, **kwargs) -> HomeSettings:
    """One per environment: return the existing row, or make it."""
    with environment_scope(environment):
        settings, _ = HomeSettings.objects.get_or_create(environment=environment, defaults=kwargs)
        if kwargs:
            HomeSettings.objects.filter(pk=settings.pk).update(**kwargs)
            settings.refresh_from_db()
    cache.delete(home_settings_cache_key(environment.pk))  # update() sends no signal
    return settings


@tenant_factory(OfferProduct)
class OfferProductFactory(TenantFactory):
    class Meta:
        model = OfferProduct

    name = factory.Sequence(lambda n: f"HELOC {n}")
    kind = OfferProduct.Kind.HELOC
    title = "Home equity line of credit"
    summary = "Borrow against your home when you need it."
    rate_type = OfferProduct.RateType.FIXED
    apr = Decimal("7.250")
    max_cltv = Decimal("0.8000")
    min_amount = Decimal("10000")
    max_amount = Decimal("250000")
    term_months = 120
    disclosures = "APR 7.25%. Repayment term 10 years."


@tenant_factory(OfferMatch)
class OfferMatchFactory(TenantFactory):
    class Meta:
        model = OfferMatch

    property = factory.LazyAttribute(lambda o: PropertyFactory(environment=o.environment))
    member = factory.LazyAttribute(lambda o: o.property.member)
    product = factory.LazyAttribute(lambda o: OfferProductFactory(environment=o.environment))
    rank = 1
    benefit_kind = OfferMatch.Benefit.AVAILABLE_LINE
    benefit = Decimal("40000")
    score = Decimal("4000")
    amount = Decimal("40000")
    rate = Decimal("7.250")
    computed_at = factory.Faker("past_datetime", tzinfo=datetime.UTC)


@tenant_factory(MemberOffer)
class MemberOfferFactory(TenantFactory):
    class Meta:
        model = MemberOffer

    member = factory.LazyAttribute(lambda o: MemberFactory(environment=o.environment))
    product = factory.LazyAttribute(lambda o: OfferProductFactory(environment=o.environment))


# -- appointments ---------------------------------------------------------------------------


@tenant_factory(LoanOfficer)
class LoanOfficerFactory(TenantFactory):
    class Meta:
        model = LoanOfficer

    name = factory.Sequence(lambda n: f"Officer {n}")
    email = factory.Sequence(lambda n: f"officer{n}@lender.test")
    nmls_id = factory.Sequence(lambda n: f"{900000 + n}")
    slot_minutes = 30
    buffer_minutes = 0
    days_ahead = 14


def officer_with_week(environment, *, start=datetime.time(9), end=datetime.time(17), **kwargs):
    """An officer available Monday to Friday (institution time), 9 to 5 unless told."""
    officer = LoanOfficerFactory(environment=environment, **kwargs)
    with environment_scope(environment):
        OfficerAvailability.objects.bulk_create(
            [
                OfficerAvailability(
                    environment=environment,
                    officer=officer,
                    weekday=day,
                    start_time=start,
                    end_time=end,
                )
                for day in range(5)
            ]
        )
    cache.delete(bookable_cache_key(environment.pk))  # bulk_create sends no signal
    return officer


@tenant_factory(OfficerAvailability)
class OfficerAvailabilityFactory(TenantFactory):
    class Meta:
        model = OfficerAvailability

    officer = factory.LazyAttribute(lambda o: LoanOfficerFactory(environment=o.environment))
    weekday = 3
    start_time = datetime.time(9)
    end_time = datetime.time(17)


def _next_week(hour: int) -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC)
    return (now + datetime.timedelta(days=7)).replace(hour=hour, minute=0, second=0, microsecond=0)


@tenant_factory(Appointment)
class AppointmentFactory(TenantFactory):
    """A row as the booking service would write it (tests of rules use the service)."""

    class Meta:
        model = Appointment

    officer = factory.LazyAttribute(lambda o: LoanOfficerFactory(environment=o.environment))
    member = factory.LazyAttribute(lambda o: MemberFactory(environment=o.environment))
    start = factory.LazyFunction(lambda: _next_week(15))
    end = factory.LazyAttribute(lambda o: o.start + datetime.timedelta(minutes=30))
    member_time_zone = "America/New_York"
    uid = factory.Sequence(lambda n: f"uid{n}@appointments.test")


@tenant_factory(AppointmentSettings)
def appointment_settings_factory(environment, **kwargs) -> AppointmentSettings:
    """One per environment: return the existing row, or make it."""
    with environment_scope(environment):
        row, _ = AppointmentSettings.objects.get_or_create(environment=environment)
        if kwargs:
            AppointmentSettings.objects.filter(pk=row.pk).update(**kwargs)
            row.refresh_from_db()
    cache.delete(bookable_cache_key(environment.pk))  # update() sends no signal
    return row
