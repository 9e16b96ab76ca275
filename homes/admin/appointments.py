"""Appointments in the admin: settings (promoted), loan officers with their weekly
availability and CalDAV calendar, the appointments with status actions and calendar
retries, and a week calendar of the officers' appointments."""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from itertools import pairwise

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from homes.appointment_selectors import week_calendar
from homes.models import Appointment, AppointmentSettings, LoanOfficer, OfficerAvailability
from homes.services import (
    AppointmentError,
    appointment_cancel,
    appointment_set_status,
    appointment_settings_save,
    appointments_calendar_retry,
    loan_officer_save,
    officer_availability_set,
    officer_calendar_check,
)
from homes.services.officers import CALENDAR_FIELDS, PreviousCalendarError
from institutions.admin_base import TenantAdmin

LENDING = frozenset({"admin", "lending"})
CALENDAR_REACH = timedelta(days=10 * 366)  # how far from today the week calendar goes


@admin.register(AppointmentSettings)
class AppointmentSettingsAdmin(TenantAdmin):
    change_roles = LENDING
    production_read_only = True
    list_display = ["__str__", "enabled", "min_notice_minutes", "remind_day_before"]

    def has_add_permission(self, request):
        environment = self._environment(request)
        exists = AppointmentSettings.objects.filter(environment=environment).exists()
        return super().has_add_permission(request) and not exists

    def save_model(self, request, obj, form, change):
        appointment_settings_save(
            environment=self._environment(request), settings=obj, actor=request.user
        )


class AvailabilityFormSet(forms.BaseInlineFormSet):
    """Windows of one weekday may not overlap (checked across the whole form)."""

    def clean(self):
        super().clean()
        rows = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            if data.get("start_time") and data.get("end_time") and data.get("weekday") is not None:
                rows.append((int(data["weekday"]), data["start_time"], data["end_time"], form))
        rows.sort(key=lambda r: r[:3])
        for (day_a, _, end_a, _), (day_b, start_b, _, form) in pairwise(rows):
            if day_a == day_b and start_b < end_a:
                form.add_error("start_time", "Overlaps another window of the same day.")

    def windows(self):
        """(weekday, start, end) of every window kept, for the availability service."""
        out = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data and not data.get("DELETE") and data.get("start_time"):
                out.append((int(data["weekday"]), data["start_time"], data["end_time"]))
        return out


class AvailabilityInline(admin.TabularInline):
    model = OfficerAvailability
    formset = AvailabilityFormSet
    fields = ["weekday", "start_time", "end_time"]
    exclude = ["environment"]
    extra = 1
    verbose_name = "weekly window (institution time)"
    verbose_name_plural = "Weekly availability, in the institution's time zone"

    # Staff hold roles, not Django model permissions: the officer's admin decides.
    def _officers(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        return self._officers().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._officers().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._officers().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._officers().has_change_permission(request, obj)


class LoanOfficerForm(forms.ModelForm):
    caldav_url = forms.CharField(
        label="CalDAV calendar URL",
        required=False,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="The calendar collection, e.g. https://cal.example.com/dav/sam/work/",
    )
    caldav_username = forms.CharField(label="CalDAV username", required=False)
    caldav_password = forms.CharField(
        label="CalDAV password",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown. Leave blank to keep the current one.",
    )
    keep_previous_events = forms.BooleanField(
        label="Leave upcoming appointments in the previous calendar",
        required=False,
        help_text="When the calendar URL changes or is removed, the officer's upcoming "
        "appointments are removed from the previous calendar, then written to the new one. "
        "Tick this only if the previous calendar cannot be reached any more.",
    )

    class Meta:
        model = LoanOfficer
        # `offers` is added by the admin per request: its choices need the active scope.
        fields = [
            "name",
            "title",
            "email",
            "nmls_id",
            "photo",
            "is_active",
            "slot_minutes",
            "buffer_minutes",
            "days_ahead",
            "caldav_url",
            "caldav_username",
            "caldav_password",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environment = None

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        clash = LoanOfficer.objects.filter(email__iexact=email)
        if self.environment is not None:
            clash = clash.filter(environment=self.environment)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError("Another loan officer here has this email address.")
        return email

    def clean(self):
        data = super().clean()
        if not data.get("caldav_url"):
            data["caldav_username"] = data["caldav_password"] = ""
        elif not data.get("caldav_password") and self.instance.pk:
            data["caldav_password"] = self.instance.caldav_password  # kept
        return data


@admin.register(LoanOfficer)
class LoanOfficerAdmin(TenantAdmin):
    form = LoanOfficerForm
    change_roles = LENDING
    inlines = [AvailabilityInline]
    list_display = ["name", "email", "nmls_id", "is_active", "slot_minutes", "calendar"]
    list_filter = ["is_active", "caldav_status"]
    search_fields = ["name", "email", "nmls_id"]
    filter_horizontal = ["offers"]
    readonly_fields = ["calendar", "caldav_checked_at", "caldav_error"]
    actions = ["check_calendars", "retry_calendar_syncs"]
    fieldsets = [
        (None, {"fields": ["name", "title", "email", "nmls_id", "photo", "is_active"]}),
        ("Meetings", {"fields": ["slot_minutes", "buffer_minutes", "days_ahead", "offers"]}),
        (
            "CalDAV calendar (optional)",
            {
                "fields": [
                    "caldav_url",
                    "caldav_username",
                    "caldav_password",
                    "keep_previous_events",
                    "calendar",
                    "caldav_checked_at",
                    "caldav_error",
                ],
                "description": "Busy time is read from this calendar before times are "
                "offered; booked appointments are written to it, moved and removed.",
            },
        ),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # A page that may only be looked at shows every field's stored value: the calendar's
        # URL (which may carry credentials or an internal host), username and password are
        # left out, and only whether a calendar is connected is shown.
        hidden = {*CALENDAR_FIELDS, "keep_previous_events"}
        shown = []
        for name, options in fieldsets:
            fields = [field for field in options["fields"] if field not in hidden]
            if len(fields) < len(options["fields"]):
                fields.insert(0, "calendar_connected")
            shown.append((name, {**options, "fields": fields}))
        return shown

    @admin.display(description="CalDAV calendar")
    def calendar_connected(self, obj):
        return "Connected" if obj is not None and obj.has_calendar else "Not connected"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        environment = self._environment(request)

        class ScopedForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                self.environment = environment

        return ScopedForm

    @admin.display(description="Calendar")
    def calendar(self, obj):
        if obj is None or not obj.pk:
            return "-"
        colour = {"ok": "#14532d", "error": "#b00020"}.get(obj.caldav_status, "#555")
        text = obj.get_caldav_status_display()
        if obj.caldav_status == LoanOfficer.CalendarStatus.ERROR:
            text = f"{text}: {obj.caldav_error}"
        return format_html('<span style="color:{}">{}</span>', colour, text)

    def save_model(self, request, obj, form, change):
        previous = LoanOfficer.objects.filter(pk=obj.pk).first() if obj.pk else None
        changed = previous is None or any(
            getattr(previous, name) != getattr(obj, name) for name in CALENDAR_FIELDS
        )
        save = partial(
            loan_officer_save,
            environment=self._environment(request),
            officer=obj,
            offers=form.cleaned_data.get("offers"),
            actor=request.user,
        )
        try:
            save(
                previous_events="keep"
                if form.cleaned_data.get("keep_previous_events")
                else "remove"
            )
        except PreviousCalendarError as error:
            # Everything else is saved; the calendar stays as it was, and staff are told why.
            for name in CALENDAR_FIELDS:
                setattr(obj, name, getattr(previous, name))
            save()
            self.message_user(request, f"{obj}: {' '.join(error.messages)}", messages.ERROR)
            return
        if obj.has_calendar and changed:
            self._check(request, obj)

    def save_formset(self, request, form, formset, change):
        if isinstance(formset, AvailabilityFormSet):
            formset.save(commit=False)  # the change message lists what changed
            environment = self._environment(request)
            posted = {f.instance.pk for f in formset.initial_forms}
            unposted = OfficerAvailability.objects.filter(
                environment=environment, officer=form.instance
            ).exclude(pk__in=posted)
            officer_availability_set(
                environment=environment,
                officer=form.instance,
                windows=[
                    *formset.windows(),
                    *unposted.values_list("weekday", "start_time", "end_time"),
                ],
                actor=request.user,
            )
        else:  # pragma: no cover  (no other inline)
            super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # offers were set by the service
            self.save_formset(request, form, formset, change)

    def _check(self, request, officer) -> None:
        error = officer_calendar_check(environment=self._environment(request), officer=officer)
        if error:
            self.message_user(request, f"{officer}: {error}", messages.ERROR)
        else:
            self.message_user(request, f"{officer}: the calendar answers.", messages.SUCCESS)

    def has_calendar_permission(self, request):
        return bool(self._roles(request) & LENDING)

    @admin.action(
        description="Check the selected officers' calendars now", permissions=["calendar"]
    )
    def check_calendars(self, request, queryset):
        for officer in queryset:
            self._check(request, officer)

    @admin.action(
        description="Retry the selected officers' failed calendar syncs", permissions=["calendar"]
    )
    def retry_calendar_syncs(self, request, queryset):
        ids = Appointment.objects.filter(
            environment=self._environment(request),
            officer__in=queryset,
            caldav_state__in=[Appointment.CalendarSync.FAILED, Appointment.CalendarSync.PENDING],
        ).values_list("pk", flat=True)
        count = appointments_calendar_retry(
            environment=self._environment(request), appointment_ids=list(ids), actor=request.user
        )
        self.message_user(request, f"{count} calendar syncs queued again.", messages.SUCCESS)


@admin.register(Appointment)
class AppointmentAdmin(TenantAdmin):
    """Bookings come from members; staff record how they went, cancel, retry calendars."""

    view_roles = frozenset({"admin", "lending", "it"})
    change_roles = LENDING
    list_display = [
        "local_start",
        "officer",
        "member",
        "offer",
        "status",
        "calendar_sync",
        "caldav_attempts",
    ]
    list_filter = ["status", "caldav_state", "officer"]
    list_select_related = ["officer", "member", "offer", "environment__institution"]
    search_fields = ["member__email", "member__last_name", "officer__name", "uid"]
    date_hierarchy = "start"
    ordering = ["-start"]
    change_list_template = "admin/homes/appointment/change_list.html"
    actions = ["mark_completed", "mark_no_show", "cancel", "retry_calendar"]
    fields = [
        "local_start",
        "officer",
        "member",
        "offer",
        "status",
        "note",
        "member_time_zone",
        "uid",
        "sequence",
        "booked_at",
        "changed_at",
        "cancelled_at",
        "cancelled_by",
        "reminded_day_at",
        "reminded_hour_at",
        "calendar_sync",
        "caldav_attempts",
        "caldav_error",
        "caldav_synced_at",
        "caldav_next_attempt_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # changed only through the actions (services), never by hand

    def has_delete_permission(self, request, obj=None):
        return False  # a booking is cancelled, never deleted

    def has_status_permission(self, request):
        return bool(self._roles(request) & LENDING)

    @admin.display(description="When (institution time)", ordering="start")
    def local_start(self, obj):
        local = obj.start.astimezone(obj.environment.institution.tz)
        return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({obj.officer.slot_minutes} min)"

    @admin.display(description="Calendar sync", ordering="caldav_state")
    def calendar_sync(self, obj):
        colour = {"failed": "#b00020", "pending": "#8a5a00", "synced": "#14532d"}
        text = obj.get_caldav_state_display()
        if obj.caldav_error and obj.caldav_state != Appointment.CalendarSync.SYNCED:
            text = f"{text}: {obj.caldav_error}"
        return format_html(
            '<span style="color:{}">{}</span>', colour.get(obj.caldav_state, "#555"), text
        )

    def _apply(self, request, queryset, action, done: str):
        environment = self._environment(request)
        count = 0
        for appointment in queryset:
            try:
                action(environment=environment, appointment=appointment)
            except AppointmentError as error:
                self.message_user(request, f"{appointment}: {error.message}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} appointments {done}.", messages.SUCCESS)

    @admin.action(description="Mark completed", permissions=["status"])
    def mark_completed(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda **kw: appointment_set_status(
                **kw, status=Appointment.Status.COMPLETED, actor=request.user
            ),
            "marked completed",
        )

    @admin.action(description="Mark no-show", permissions=["status"])
    def mark_no_show(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda **kw: appointment_set_status(
                **kw, status=Appointment.Status.NO_SHOW, actor=request.user
            ),
            "marked no-show",
        )

    @admin.action(description="Cancel (the member and officer are told)", permissions=["status"])
    def cancel(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda **kw: appointment_cancel(**kw, by="staff", actor=request.user),
            "cancelled",
        )

    @admin.action(description="Retry the calendar sync", permissions=["status"])
    def retry_calendar(self, request, queryset):
        count = appointments_calendar_retry(
            environment=self._environment(request),
            appointment_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,
        )
        self.message_user(request, f"{count} calendar syncs queued again.", messages.SUCCESS)

    # -- the week calendar ----------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "calendar/",
                self.admin_site.admin_view(self.calendar_view),
                name="homes_appointment_calendar",
            ),
            *super().get_urls(),
        ]

    def calendar_view(self, request):
        """A week of the officers' appointments, by hour (institution time)."""
        environment = self._environment(request)
        if environment is None or not self.has_view_permission(request):
            return render(request, "admin/homes/forbidden.html", status=403)
        today = timezone.now().astimezone(environment.institution.tz).date()
        try:
            week = date.fromisoformat(request.GET.get("week", ""))
        except ValueError:
            week = today
        # Within years of today: a week at the ends of the calendar (year 1, 9999) has no
        # Monday before it or week after it that dates can hold.
        week = min(max(week, today - CALENDAR_REACH), today + CALENDAR_REACH)
        week -= timedelta(days=week.weekday())
        officer = None
        if request.GET.get("officer", "").isdigit():
            officer = LoanOfficer.objects.filter(
                environment=environment, pk=int(request.GET["officer"])
            ).first()
        grid = week_calendar(environment, week=week, officer=officer)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Appointments, week of {week:%B} {week.day}, {week.year}",
            "grid": grid,
            "today": today,
            "previous": (week - timedelta(days=7)).isoformat(),
            "next": (week + timedelta(days=7)).isoformat(),
            "changelist": reverse("admin:homes_appointment_changelist"),
        }
        return render(request, "admin/homes/appointment/calendar.html", context)
