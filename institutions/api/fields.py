"""Serializer fields that take JSON types as declared in the schema, and nothing else.

DRF coerces ("12" for an integer, 1 for a boolean, a number for a string); an integration
contract should not: a value of the wrong JSON type is refused, naming the field. Money
and rates are JSON numbers, rounded half-even to their precision (cents; 1/1000 %).
"""

from __future__ import annotations

import datetime
import decimal
import re

from django.utils import timezone
from rest_framework import serializers

from institutions.tenancy import current_environment

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: time zone -> (the UTC minute, the date there then). Every UTC offset is whole minutes,
#: so the date cannot change within a minute (batches check thousands of dates).
_today: dict[str, tuple[datetime.datetime, datetime.date]] = {}


def today() -> datetime.date:
    """Today where the active environment's institution is (the server's time zone when no
    environment is active): a date "not in the future" is one that has begun there."""
    environment = current_environment()
    tz = environment.institution.tz if environment is not None else timezone.get_current_timezone()
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    cached = _today.get(str(tz))
    if cached is None or cached[0] != minute:
        cached = _today[str(tz)] = (minute, now.astimezone(tz).date())
    return cached[1]


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    """An email address, stored lower-case."""

    default_error_messages = {"invalid": "Enter a valid email address."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data).strip().lower()


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    default_error_messages = {
        "invalid": "Must be a number.",
        "overflow": "Must be a number; this one is too large.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, int):
            # JSON integers have no bound; one beyond a float (10**400) is out of range,
            # named by the limit it passes, never an OverflowError.
            if self.max_value is not None and data > self.max_value:
                self.fail("max_value", max_value=self.max_value)
            if self.min_value is not None and data < self.min_value:
                self.fail("min_value", min_value=self.min_value)
            try:
                return float(data)
            except OverflowError:
                self.fail("overflow")
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    """A JSON number stored as a Decimal, rounded half-even to `decimal_places`."""

    default_error_messages = {"invalid": "Must be a number."}

    def __init__(self, *, max_digits: int, decimal_places: int, min_value, max_value, **kwargs):
        super().__init__(
            max_digits=max_digits,
            decimal_places=decimal_places,
            min_value=decimal.Decimal(min_value),
            max_value=decimal.Decimal(max_value),
            rounding=decimal.ROUND_HALF_EVEN,
            **kwargs,
        )

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            value = (
                decimal.Decimal(repr(data)) if isinstance(data, float) else decimal.Decimal(data)
            )
        except decimal.DecimalException:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        return self.quantize(value)


class StrictDateField(serializers.DateField):
    default_error_messages = {"invalid": "Must be a date as YYYY-MM-DD."}

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _DATE_RE.match(value):
            self.fail("invalid")
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            self.fail("invalid")


class StrictDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its time zone (a time without one is ambiguous), in UTC.

    Years 1900-2999 and offsets up to 14 hours, the real ones: the database refuses others.
    """

    default_error_messages = {
        "invalid": "Must be an ISO 8601 time with a time zone, e.g. 2026-01-31T08:00:00Z.",
        "range": "Must be between the years 1900 and 2999, with a real time zone offset.",
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or len(value) > 40:
            self.fail("invalid")
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("invalid")
        offset = parsed.utcoffset()
        if not 1900 <= parsed.year <= 2999 or abs(offset) > datetime.timedelta(hours=14):
            self.fail("range")
        return parsed.astimezone(datetime.UTC)


def money(**kwargs) -> StrictDecimalField:
    """Dollars and cents, 0 to 10 billion."""
    kwargs.setdefault("min_value", 0)
    kwargs.setdefault("max_value", 10_000_000_000)
    return StrictDecimalField(max_digits=14, decimal_places=2, **kwargs)


def rate(**kwargs) -> StrictDecimalField:
    """An interest rate in percent, 0 to 100, to 1/1000 of a percent."""
    return StrictDecimalField(max_digits=6, decimal_places=3, min_value=0, max_value=100, **kwargs)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a misspelt field is not silently ignored)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {field.field_name for field in self._writable_fields}
            unknown = sorted(str(k) for k in set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {name[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)


class QueryBooleanField(serializers.BooleanField):
    """`true` or `false` in a query string."""

    default_error_messages = {"invalid": "Must be true or false."}
    default_empty_html = serializers.empty  # absent: the default, not False

    def to_internal_value(self, data):
        if data not in ("true", "false"):
            self.fail("invalid")
        return data == "true"
