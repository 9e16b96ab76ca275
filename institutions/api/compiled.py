"""A fast path for validating large batches against their DRF serializers.

DRF spends about a millisecond per row of thirty fields in its generic machinery; a bulk
sync of 1,000 members cannot afford that. `compile_serializer` turns a serializer (the
declaration the OpenAPI schema is generated from) into plain checks that accept a value
only when the serializer would accept it, giving the same validated data. Anything it is
not sure about raises `Unsure`, and the caller runs the serializer itself: so errors are
always DRF's own, and the fast path can only be faster, never more lenient
(tests/api/test_compiled.py checks that against the serializers).
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
from collections.abc import Callable
from typing import Any

from django.core import validators as django_validators
from rest_framework import fields as drf
from rest_framework import serializers
from rest_framework import validators as drf_validators

from institutions.api import fields as strict


class Unsure(Exception):
    """The fast path does not vouch for this value: ask the serializer."""


Check = Callable[[Any], Any]
_SURROGATE = re.compile("[\ud800-\udfff]")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMPTY = drf.empty


def _limits(field) -> tuple[Any, Any]:
    return getattr(field, "min_value", None), getattr(field, "max_value", None)


def _extra_validators(field, known: tuple[type, ...]) -> list:
    return [v for v in field.validators if not isinstance(v, known)]


def _run(validators, value):
    for validator in validators:
        try:
            if getattr(validator, "requires_context", False):
                raise Unsure
            validator(value)
        except (serializers.ValidationError, django_validators.ValidationError) as error:
            raise Unsure from error


def _null(field, check: Check) -> Check:
    allow_null = field.allow_null

    def checked(value):
        if value is None:
            if allow_null:
                return None
            raise Unsure
        return check(value)

    return checked


_CHAR_VALIDATORS = (
    django_validators.MaxLengthValidator,
    django_validators.MinLengthValidator,
    django_validators.ProhibitNullCharactersValidator,
    drf_validators.ProhibitSurrogateCharactersValidator,
    django_validators.RegexValidator,
)


def _char(field) -> Check:
    trim, allow_blank = field.trim_whitespace, field.allow_blank
    max_length, min_length = field.max_length, field.min_length
    regexes = [
        re.compile(v.regex.pattern, v.regex.flags)  # Django's are lazy: a proxy per call
        for v in field.validators
        if type(v) is django_validators.RegexValidator and not v.inverse_match
    ]
    extra = _extra_validators(field, _CHAR_VALIDATORS) + [
        v
        for v in field.validators
        if isinstance(v, django_validators.RegexValidator)
        and (type(v) is not django_validators.RegexValidator or v.inverse_match)
    ]
    email = isinstance(field, strict.StrictEmailField)

    def check(value):
        if type(value) is not str:
            raise Unsure
        text = value.strip() if trim else value
        if not text:
            if allow_blank:
                return ""
            raise Unsure
        if email:
            text = text.lower()
        if max_length is not None and len(text) > max_length:
            raise Unsure
        if min_length is not None and len(text) < min_length:
            raise Unsure
        if "\x00" in text or (not text.isascii() and _SURROGATE.search(text)):
            raise Unsure
        for regex in regexes:
            if not regex.search(text):
                raise Unsure
        if extra:
            _run(extra, text)
        return text

    return check


def _integer(field) -> Check:
    low, high = _limits(field)
    extra = _extra_validators(
        field, (django_validators.MinValueValidator, django_validators.MaxValueValidator)
    )

    def check(value):
        if type(value) is not int:
            raise Unsure
        if (low is not None and value < low) or (high is not None and value > high):
            raise Unsure
        if extra:
            _run(extra, value)
        return value

    return check


def _float(field) -> Check:
    low, high = _limits(field)
    extra = _extra_validators(
        field, (django_validators.MinValueValidator, django_validators.MaxValueValidator)
    )

    def check(value):
        if type(value) is not int and type(value) is not float:
            raise Unsure
        try:
            number = float(value)
        except OverflowError as error:  # an integer beyond a float: the serializer names it
            raise Unsure from error
        if not math.isfinite(number):
            raise Unsure
        if (low is not None and number < low) or (high is not None and number > high):
            raise Unsure
        if extra:
            _run(extra, number)
        return number

    return check


def _decimal(field: strict.StrictDecimalField) -> Check:
    low, high = field.min_value, field.max_value
    exponent = decimal.Decimal(1).scaleb(-field.decimal_places)
    context = decimal.Context(prec=field.max_digits)
    rounding = field.rounding
    extra = _extra_validators(
        field, (django_validators.MinValueValidator, django_validators.MaxValueValidator)
    )

    def check(value):
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise Unsure
            number = decimal.Decimal(repr(value))
        elif kind is int:
            number = decimal.Decimal(value)
        else:
            raise Unsure
        if number > high or number < low:
            raise Unsure
        try:
            number = number.quantize(exponent, rounding=rounding, context=context)
        except decimal.DecimalException as error:
            raise Unsure from error
        if extra:
            _run(extra, number)
        return number

    return check


def _date(field) -> Check:
    if field.validators:
        raise TypeError("date validators")

    def check(value):
        if type(value) is not str or not _DATE.match(value):
            raise Unsure
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as error:
            raise Unsure from error

    return check


def _boolean(field) -> Check:
    if field.validators:
        raise TypeError("boolean validators")

    def check(value):
        if type(value) is not bool:
            raise Unsure
        return value

    return check


def _choice(field) -> Check:
    choices = dict(field.choice_strings_to_values)
    if field.validators:
        raise TypeError("choice validators")

    def check(value):
        if type(value) is not str or value not in choices:
            raise Unsure
        return choices[value]

    return check


def _list(field: serializers.ListSerializer) -> Check:
    child = compile_serializer(field.child)
    allow_empty, max_length = field.allow_empty, field.max_length
    min_length = field.min_length
    if field.validators:
        raise TypeError("list validators")

    def check(value):
        if type(value) is not list:
            raise Unsure
        if (not value and not allow_empty) or (max_length is not None and len(value) > max_length):
            raise Unsure
        if min_length is not None and len(value) < min_length:
            raise Unsure
        return [child(item) for item in value]

    return check


def _field(field) -> Check:
    """The fast check of one field (TypeError: none; the serializer is used instead)."""
    if field.read_only or field.source != field.field_name:
        raise TypeError("read-only or renamed field")
    if isinstance(field, serializers.ListSerializer):
        check = _list(field)
    elif isinstance(field, serializers.Serializer):
        check = compile_serializer(field)
    elif isinstance(field, strict.StrictDecimalField):
        check = _decimal(field)
    elif isinstance(field, strict.StrictIntegerField):
        check = _integer(field)
    elif isinstance(field, strict.StrictFloatField):
        check = _float(field)
    elif isinstance(field, strict.StrictBooleanField):
        check = _boolean(field)
    elif isinstance(field, strict.StrictDateField):
        check = _date(field)
    elif type(field) is serializers.ChoiceField:
        check = _choice(field)
    elif type(field).to_internal_value in (
        strict.StrictCharField.to_internal_value,
        strict.StrictEmailField.to_internal_value,
    ):
        check = _char(field)
    else:
        raise TypeError(f"no fast path for {type(field).__name__}")
    return _null(field, check)


def compile_serializer(serializer: serializers.Serializer) -> Check:
    """A function returning what `serializer` validates `data` to, or raising Unsure."""
    known: set[str] = set()
    plan: list[tuple[str, Check, bool, Any, Callable | None]] = []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        known.add(name)
        default = field.default
        if default is not _EMPTY and callable(default):
            raise TypeError("callable defaults")
        plan.append(
            (
                name,
                _field(field),
                field.required,
                default,
                getattr(serializer, f"validate_{name}", None),
            )
        )
    strict_keys = isinstance(serializer, strict.StrictSerializer)
    overridden = type(serializer).validate is not serializers.Serializer.validate
    validate = serializer.validate if overridden else None
    if serializer.validators:
        raise TypeError("serializer validators")

    def check(data):
        if type(data) is not dict:
            raise Unsure
        if strict_keys and not known.issuperset(data):
            raise Unsure
        out = {}
        for name, field_check, required, default, validate_field in plan:
            if name in data:
                value = field_check(data[name])
                if validate_field is not None:
                    try:
                        value = validate_field(value)
                    except serializers.ValidationError as error:
                        raise Unsure from error
                out[name] = value
            elif required:
                raise Unsure
            elif default is not _EMPTY:
                out[name] = default
        if validate is not None:
            try:
                out = validate(out)
            except (serializers.ValidationError, django_validators.ValidationError) as error:
                raise Unsure from error
        return out

    return check


_compiled: dict[type, Check | None] = {}


def compiled(serializer_class: type[serializers.Serializer]) -> Check | None:
    """The fast path of a serializer class, made once; None when it has none."""
    if serializer_class not in _compiled:
        try:
            _compiled[serializer_class] = compile_serializer(serializer_class())
        except TypeError:
            _compiled[serializer_class] = None
    return _compiled[serializer_class]
