"""Member pages for conversations with loan officers: choose an officer and a free time in
your own time zone, add a note, book; see, move or cancel an appointment.

Server-rendered forms that work without JavaScript; a small script only preselects the
browser's time zone. Times are posted as UTC instants and checked again by the services.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from homes import appointment_selectors as selectors
from homes import ical
from homes.member_views import _enrollment_gate
from homes.models import Appointment, OfferProduct
from homes.services import (
    AppointmentError,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    officer_busy,
)
from homes.services.appointments import NOTE_MAX, when, zone
from homes.services.calendars import event_data
from homes.slots import subtract
from homes.views import member_required
from institutions.pages import tenant_object_page

TZ_SESSION_KEY = "chimney_member_tz"
COMMON_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
]


def member_zone(request) -> tuple[str, bool]:
    """The member's time zone and whether they chose it: a form or browser value (kept for
    the session), else the institution's."""
    wanted = request.POST.get("tz") or request.GET.get("tz")
    if zone(wanted):
        request.session[TZ_SESSION_KEY] = wanted
        return wanted, True
    remembered = request.session.get(TZ_SESSION_KEY)
    if zone(remembered):
        return remembered, True
    return request.environment.institution.time_zone, False


def _zone_choices(current: str, institution: str) -> list[str]:
    zones = [institution, *[z for z in COMMON_ZONES if z != institution]]
    if current not in zones:
        zones.append(current)
    return zones


def _offer(request) -> OfferProduct | None:
    raw = request.POST.get("offer") or request.GET.get("offer")
    if not raw:
        return None
    if not str(raw).isdigit():
        raise Http404("No such offer.")
    return get_object_or_404(
        OfferProduct, environment=request.environment, pk=int(raw), is_active=True
    )


def _first_day(request, tz_name: str) -> date:
    today = timezone.now().astimezone(zone(tz_name)).date()
    try:
        wanted = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        return today
    return min(max(wanted, today), today + timedelta(days=180))


def _picker(request, officer, *, tz_name, exclude: Appointment | None = None) -> dict:
    """Free slots of one officer for a week page, in the member's time zone."""
    environment = request.environment
    settings = selectors.appointment_settings(environment)
    now = timezone.now()
    bounds = selectors.booking_range(officer, settings, now)
    tz = environment.institution.tz
    busy = officer_busy(
        environment=environment, officer=officer, start=bounds.start(tz), end=bounds.end(tz)
    )
    calendar_busy = busy.periods
    if exclude is not None:  # the event being moved is busy only because of itself
        calendar_busy = subtract(calendar_busy, (exclude.start, exclude.end))
    slots = selectors.officer_free_slots(
        officer,
        settings=settings,
        now=now,
        calendar_busy=calendar_busy,
        exclude_id=exclude.pk if exclude else None,
    )
    member_tz = zone(tz_name)
    first = _first_day(request, tz_name)
    days, before, after = selectors.slots_by_day(slots, member_tz, first)
    if not days and not before and slots:  # past the last slot: show the first week again
        first = slots[0].astimezone(member_tz).date()
        days, before, after = selectors.slots_by_day(slots, member_tz, first)
    return {
        "officer": officer,
        "days": [
            {
                "day": d.day,
                "slots": [
                    {
                        "value": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "label": dateformat.format(s.astimezone(member_tz), "g:i A"),
                    }
                    for s in d.slots
                ],
            }
            for d in days
        ],
        "earlier": (first - timedelta(days=7)).isoformat() if before else "",
        "later": (first + timedelta(days=7)).isoformat() if after else "",
        "any_slots": bool(slots),
        "calendar": busy,
        "settings": settings,
    }


def _parse_start(raw: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        return None
    return value if timezone.is_aware(value) else None


def _query(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@member_required
@require_http_methods(["GET", "POST"])
def book(request):
    """Choose an officer and a time (from an offer or the dashboard), add a note, book."""
    gate = _enrollment_gate(request)
    if gate is not None:
        return gate
    environment = request.environment
    settings = selectors.appointment_settings(environment)
    offer = _offer(request)
    tz_name, chosen = member_zone(request)
    officers = selectors.bookable_officers(environment, offer) if settings.enabled else []
    wanted = request.POST.get("officer") or request.GET.get("officer")
    officer = next((o for o in officers if str(o.pk) == str(wanted)), None)
    if officer is None and officers:
        officer = officers[0]
    error, status, note = None, 200, ""
    if request.method == "POST":
        note = request.POST.get("note", "")
        start = _parse_start(request.POST.get("start", ""))
        if officer is None or str(officer.pk) != str(wanted):
            error = AppointmentError(
                "That loan officer is not taking appointments; please choose again.",
                code="officer",
                field="officer",
            )
        elif start is None:
            error = AppointmentError("Please choose a time.", code="invalid", field="start")
        else:
            try:
                appointment = appointment_book(
                    environment=environment,
                    member=request.member,
                    officer=officer,
                    start=start,
                    offer=offer,
                    note=note,
                    time_zone=tz_name,
                )
            except AppointmentError as exc:
                error = exc
            else:
                messages.success(
                    request,
                    f"Booked: {when(appointment.start, zone(tz_name))} with {officer.name}. "
                    "We've emailed you the invitation.",
                )
                return redirect("homes:appointment", pk=appointment.pk)
        status = 409 if error and error.code in ("taken", "member_busy") else 400
    context = {
        "settings": settings,
        "offer": offer,
        "officers": officers,
        "tz_name": tz_name,
        "tz_chosen": chosen,
        "zones": _zone_choices(tz_name, environment.institution.time_zone),
        "error": error,
        "note": note,
        "note_max": NOTE_MAX,
        "action": reverse("homes:appointment-book"),
        "base_query": _query(offer=offer.pk if offer else None),
    }
    if officer is not None:
        context["picker"] = _picker(request, officer, tz_name=tz_name)
        context["officer_query"] = _query(
            offer=offer.pk if offer else None, officer=officer.pk, tz=tz_name
        )
    return render(request, "homes/appointment_book.html", context, status=status)


def _mine(request, pk: int) -> Appointment:
    """The member's own appointment: another member's (or tenant's) answers 404."""
    return get_object_or_404(
        Appointment.objects.select_related("officer", "offer"),
        environment=request.environment,
        member=request.member,
        pk=pk,
    )


@member_required
def appointments(request):
    gate = _enrollment_gate(request)
    if gate is not None:
        return gate
    upcoming, others = selectors.member_appointments(request.environment, request.member)
    tz_name, _ = member_zone(request)
    return render(
        request,
        "homes/appointments.html",
        {"upcoming": upcoming, "others": others, "tz_name": tz_name},
    )


@tenant_object_page(Appointment)
@member_required
def appointment_detail(request, pk: int):
    appointment = _mine(request, pk)
    tz_name = appointment.member_time_zone
    return render(
        request,
        "homes/appointment_detail.html",
        {
            "appointment": appointment,
            "tz_name": tz_name,
            "when": when(appointment.start, zone(tz_name), year=True),
            "upcoming": appointment.is_upcoming,
        },
    )


@tenant_object_page(Appointment)
@member_required
@require_http_methods(["GET", "POST"])
def appointment_reschedule_view(request, pk: int):
    appointment = _mine(request, pk)
    if not appointment.is_upcoming:
        messages.error(request, "Only an upcoming appointment can be moved.")
        return redirect("homes:appointment", pk=appointment.pk)
    tz_name = appointment.member_time_zone
    error, status = None, 200
    if request.method == "POST":
        start = _parse_start(request.POST.get("start", ""))
        if start is None:
            error = AppointmentError("Please choose a time.", code="invalid", field="start")
        else:
            try:
                moved = appointment_reschedule(
                    environment=request.environment,
                    appointment=appointment,
                    start=start,
                    actor_label=f"member {request.member.pk}",
                )
            except AppointmentError as exc:
                error = exc
            else:
                messages.success(
                    request,
                    f"Moved to {when(moved.start, zone(tz_name))}. "
                    "We've emailed you the updated invitation.",
                )
                return redirect("homes:appointment", pk=moved.pk)
        status = 409 if error and error.code in ("taken", "member_busy") else 400
    context = {
        "appointment": appointment,
        "current": when(appointment.start, zone(tz_name)),
        "tz_name": tz_name,
        "error": error,
        "action": reverse("homes:appointment-reschedule", args=[appointment.pk]),
        "picker": _picker(request, appointment.officer, tz_name=tz_name, exclude=appointment),
        "officer_query": "",
    }
    return render(request, "homes/appointment_reschedule.html", context, status=status)


@tenant_object_page(Appointment)
@member_required
@require_http_methods(["GET", "POST"])
def appointment_cancel_view(request, pk: int):
    appointment = _mine(request, pk)
    tz_name = appointment.member_time_zone
    if request.method == "POST":
        try:
            appointment_cancel(
                environment=request.environment,
                appointment=appointment,
                by="member",
                actor_label=f"member {request.member.pk}",
            )
        except AppointmentError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Your appointment is cancelled. We've let the officer know.")
        return redirect("homes:appointment", pk=appointment.pk)
    return render(
        request,
        "homes/appointment_cancel.html",
        {"appointment": appointment, "when": when(appointment.start, zone(tz_name))},
    )


@tenant_object_page(Appointment)
@member_required
def appointment_invitation(request, pk: int):
    """The appointment as a calendar file, to add to the member's own calendar."""
    appointment = _mine(request, pk)
    method = ical.CANCEL if appointment.status == Appointment.Status.CANCELLED else ical.REQUEST
    body = ical.invitation(event_data(appointment), method=method)
    response = HttpResponse(body, content_type=f"text/calendar; charset=utf-8; method={method}")
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response
