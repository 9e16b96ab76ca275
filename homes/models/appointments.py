"""Conversations with loan officers: the officers, their weekly availability, the booked
appointments, and the environment's booking settings (promoted by release)."""

from __future__ import annotations

from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone

from homes.models.members import Member
from homes.models.offers import OfferProduct
from institutions import outbound
from institutions.fields import EncryptedTextField
from institutions.models import TenantModel


class AppointmentSettings(TenantModel):
    """One per environment (promoted by release): how members book conversations."""

    enabled = models.BooleanField(
        default=True, help_text="Members can book conversations with loan officers."
    )
    intro = models.TextField(
        "introduction",
        blank=True,
        default="Talk it through with one of our loan officers: pick a time that suits you.",
        help_text="Shown to members above the times they can book.",
    )
    min_notice_minutes = models.PositiveIntegerField(
        "minimum notice (minutes)",
        default=120,
        validators=[MaxValueValidator(14 * 24 * 60)],
        help_text="Members cannot book a time that starts sooner than this.",
    )
    remind_day_before = models.BooleanField("remind 24 hours before", default=True)
    remind_hour_before = models.BooleanField("remind 1 hour before", default=True)

    class Meta:
        verbose_name = "appointment settings"
        verbose_name_plural = "appointment settings"
        constraints = [
            models.UniqueConstraint(fields=["environment"], name="appointmentsettings_one_per_env")
        ]

    def __str__(self) -> str:
        return "Appointment settings"


caldav_url_validator = URLValidator(schemes=["http", "https"])


class LoanOfficer(TenantModel):
    """A loan officer members can book; the optional CalDAV calendar is theirs."""

    class CalendarStatus(models.TextChoices):
        NONE = "none", "No calendar"
        UNCHECKED = "unchecked", "Not checked yet"
        OK = "ok", "Connected"
        ERROR = "error", "Error"

    name = models.CharField(max_length=120)
    email = models.EmailField(help_text="Invitations go here (unique per environment).")
    nmls_id = models.CharField("NMLS id", max_length=20, blank=True)
    title = models.CharField(max_length=120, blank=True, default="Loan officer")
    photo = models.ImageField(upload_to="officers/", blank=True)
    is_active = models.BooleanField(default=True, help_text="Members can book this officer.")
    slot_minutes = models.PositiveSmallIntegerField(
        "meeting length (minutes)",
        default=30,
        validators=[MinValueValidator(10), MaxValueValidator(240)],
    )
    buffer_minutes = models.PositiveSmallIntegerField(
        "buffer between meetings (minutes)",
        default=0,
        validators=[MaxValueValidator(120)],
        help_text="Kept free before and after every meeting, calendar events included.",
    )
    days_ahead = models.PositiveSmallIntegerField(
        "bookable days ahead",
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    offers = models.ManyToManyField(
        OfferProduct,
        blank=True,
        related_name="loan_officers",
        help_text="The offers this officer handles; none means every offer.",
    )
    # CalDAV: stored encrypted; never promoted, never shown back, never logged.
    caldav_url = EncryptedTextField(
        "CalDAV calendar URL",
        blank=True,
        help_text="The calendar collection, e.g. https://cal.example.com/dav/sam/work/",
    )
    caldav_username = EncryptedTextField("CalDAV username", blank=True)
    caldav_password = EncryptedTextField("CalDAV password", blank=True)
    caldav_status = models.CharField(
        "calendar status",
        max_length=10,
        choices=CalendarStatus.choices,
        default=CalendarStatus.NONE,
        editable=False,
    )
    caldav_checked_at = models.DateTimeField("calendar checked at", null=True, editable=False)
    caldav_error = models.TextField("calendar error", blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "email"], name="loanofficer_email"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_calendar(self) -> bool:
        return bool(self.caldav_url)

    def clean(self):
        errors = {}
        if self.caldav_url:
            try:
                caldav_url_validator(self.caldav_url)
            except ValidationError:
                errors["caldav_url"] = "Enter the calendar's http:// or https:// address."
            else:
                problem = outbound.url_problem(self.caldav_url)
                if problem:
                    errors["caldav_url"] = problem
        if self.caldav_password and not self.caldav_username:
            errors["caldav_username"] = "A CalDAV password needs its username."
        if errors:
            raise ValidationError(errors)


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class OfficerAvailability(TenantModel):
    """A weekly window when an officer takes meetings, in the institution's time zone."""

    officer = models.ForeignKey(LoanOfficer, on_delete=models.CASCADE, related_name="availability")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField(default=time(9))
    end_time = models.TimeField(default=time(17))

    class Meta:
        verbose_name = "weekly availability"
        verbose_name_plural = "weekly availability"
        ordering = ["officer_id", "weekday", "start_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "officer", "weekday", "start_time"],
                name="officeravailability_unique_start",
            ),
            models.CheckConstraint(
                condition=models.Q(start_time__lt=models.F("end_time")),
                name="officeravailability_start_before_end",
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__gte=0, weekday__lte=6),
                name="officeravailability_weekday_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self):
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValidationError(
                {"end_time": f"Ends ({self.end_time:%H:%M}) before it starts "
                f"({self.start_time:%H:%M})."}
            )  # fmt: skip


class Appointment(TenantModel):
    """A member's conversation with a loan officer. Times are stored in UTC.

    An officer never has two active appointments at one start (a database constraint);
    overlaps of other starts are refused under a lock on the officer's row.
    """

    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No-show"

    class CalendarSync(models.TextChoices):
        NONE = "none", "No calendar"
        PENDING = "pending", "Pending"
        SYNCED = "synced", "Synced"
        FAILED = "failed", "Failed"

    officer = models.ForeignKey(LoanOfficer, on_delete=models.PROTECT, related_name="appointments")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="appointments")
    offer = models.ForeignKey(
        OfferProduct,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    member_time_zone = models.CharField(
        max_length=64, help_text="The time zone the member booked in (their messages use it)."
    )
    note = models.TextField(blank=True, max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    uid = models.CharField("iCalendar UID", max_length=255, editable=False)
    sequence = models.PositiveIntegerField(
        default=0, editable=False, help_text="iCalendar SEQUENCE: raised by every change."
    )
    booked_at = models.DateTimeField(default=timezone.now, editable=False)
    changed_at = models.DateTimeField(
        default=timezone.now, editable=False, help_text="Booked or last moved."
    )
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_by = models.CharField(max_length=10, blank=True, editable=False)
    reminded_day_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_hour_at = models.DateTimeField(null=True, blank=True, editable=False)
    caldav_state = models.CharField(
        "calendar sync",
        max_length=8,
        choices=CalendarSync.choices,
        default=CalendarSync.NONE,
        editable=False,
    )
    caldav_attempts = models.PositiveSmallIntegerField(
        "calendar attempts", default=0, editable=False
    )
    caldav_error = models.TextField("calendar error", blank=True, editable=False)
    caldav_synced_sequence = models.IntegerField(null=True, blank=True, editable=False)
    caldav_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    caldav_next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "officer", "start"],
                condition=~models.Q(status="cancelled"),
                name="appointment_one_per_officer_start",
            ),
            models.UniqueConstraint(fields=["environment", "uid"], name="appointment_uid"),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="appointment_end_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["booked", "cancelled", "completed", "no_show"]),
                name="appointment_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "status", "start"], name="appointment_due"),
            models.Index(fields=["officer", "start"], name="appointment_officer_start"),
            models.Index(fields=["member", "start"], name="appointment_member_start"),
        ]

    def __str__(self) -> str:
        return f"{self.member} with {self.officer}, {self.start:%Y-%m-%d %H:%M} UTC"

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.CANCELLED

    @property
    def is_upcoming(self) -> bool:
        return self.status == self.Status.BOOKED and self.start > timezone.now()
