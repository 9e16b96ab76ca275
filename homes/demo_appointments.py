"""Demo loan officers: two per environment with weekly availability, the offers they
handle, and one booked conversation for a test member (staging officers' mail goes to the
sink like all staging mail)."""

from __future__ import annotations

from datetime import time, timedelta

from django.utils import timezone

from homes.appointment_selectors import appointment_settings, officer_free_slots
from homes.models import Appointment, AppointmentSettings, LoanOfficer, Member, OfferProduct
from homes.services import (
    appointment_book,
    appointment_settings_save,
    loan_officer_save,
    offer_product_save,
    officer_availability_set,
)
from institutions.demo import DemoReport
from institutions.models import Institution
from institutions.tenancy import environment_scope

OFFICERS = [
    {
        "name": "Dana Whitfield",
        "title": "Senior loan officer",
        "nmls_id": "1203456",
        "slot_minutes": 30,
        "buffer_minutes": 15,
        "days_ahead": 21,
        "windows": [(d, time(9), time(12)) for d in range(5)]
        + [(d, time(13), time(17)) for d in range(5)],
        "offers": ["HELOC", "Home equity loan"],
    },
    {
        "name": "Marcus Oyelaran",
        "title": "Mortgage loan officer",
        "nmls_id": "1208877",
        "slot_minutes": 45,
        "buffer_minutes": 0,
        "days_ahead": 14,
        "windows": [(1, time(10), time(18)), (3, time(10), time(18)), (5, time(9), time(13))],
        "offers": ["Rate-and-term refinance", "PMI removal"],
    },
]


DEMO_NOTE = "Demo: thinking about a kitchen remodel."


def demo_appointments(institution: Institution, report: DemoReport) -> None:
    for environment in institution.environments.all():
        with environment_scope(environment):
            if not LoanOfficer.objects.exists():
                _officers_create(environment, institution)
            officers = LoanOfficer.objects.filter(is_active=True).order_by("pk")
            booked = (
                Appointment.objects.filter(
                    note=DEMO_NOTE, status=Appointment.Status.BOOKED, start__gte=timezone.now()
                )
                .select_related("member")
                .order_by("start")
                .first()
            )
            report.add(
                f"  appointments ({environment.kind}): loan officers "
                f"{', '.join(o.name for o in officers)}"
                + (f"; {booked.member.email} has one booked" if booked else "")
            )


def _officers_create(environment, institution: Institution) -> None:
    if not AppointmentSettings.objects.exists():
        appointment_settings_save(
            environment=environment,
            settings=AppointmentSettings(environment=environment),
            actor_label="demo",
        )
    products = {p.name: p for p in OfferProduct.objects.all()}
    officers = []
    for spec in OFFICERS:
        first, last = spec["name"].lower().split()
        officer = loan_officer_save(
            environment=environment,
            officer=LoanOfficer(
                environment=environment,
                email=f"{first}.{last}@{institution.slug}.example",
                **{k: v for k, v in spec.items() if k not in ("windows", "offers")},
            ),
            offers=[products[n] for n in spec["offers"] if n in products],
            actor_label="demo",
        )
        officer_availability_set(environment=environment, officer=officer, windows=spec["windows"])
        officers.append(officer)
    handled = {n for spec in OFFICERS for n in spec["offers"]}
    for name, product in products.items():
        if name in handled and not product.book_appointment:
            product.book_appointment = True
            offer_product_save(environment=environment, product=product, actor_label="demo")
    _book_one(environment, officers[0], products.get("HELOC"))


def _book_one(environment, officer, offer):
    member = (
        Member.objects.filter(is_test=True, enrollment=Member.Enrollment.ENROLLED)
        .order_by("pk")
        .first()
    )
    if member is None:
        return None
    now = timezone.now()
    slots = officer_free_slots(officer, settings=appointment_settings(environment), now=now)
    later = [s for s in slots if s >= now + timedelta(days=2)]
    if not later:
        return None
    return appointment_book(
        environment=environment,
        member=member,
        officer=officer,
        start=later[0],
        offer=offer,
        note=DEMO_NOTE,
        time_zone=environment.institution.time_zone,
    )
