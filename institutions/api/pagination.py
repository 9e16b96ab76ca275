"""Cursor pagination for incremental sync: stable under inserts, no offsets.

Rows come oldest change first, ordered by (`updated_at`, `id`) (or another ordering key); the
opaque `next_cursor` continues after the last row sent. A client syncs incrementally by
keeping the newest `updated_at` it has seen and asking `updated_since` it next time (minus a
few seconds of overlap: a transaction may commit a little after the time it stamped).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from institutions.api.fields import StrictDateTimeField

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = timedelta(hours=14)  # the largest real UTC offset


class QueryIntegerField(serializers.IntegerField):
    """A whole number written in digits (a query parameter)."""

    default_error_messages = {"invalid": "Must be a whole number."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(r"[0-9]{1,9}", data):
            self.fail("invalid")
        return int(data)


class PageQuerySerializer(serializers.Serializer):
    """Query parameters of every list operation."""

    cursor = serializers.CharField(
        required=False,
        max_length=300,
        help_text="`next_cursor` of the previous page; omit for the first page.",
    )
    limit = QueryIntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )


class SyncQuerySerializer(PageQuerySerializer):
    updated_since = StrictDateTimeField(
        required=False,
        help_text="Only rows changed at or after this time (ISO 8601 with a time zone).",
    )


def query(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request's query parameters, checked (a bad one is a 400 naming it)."""
    serializer = serializer_class(data=request.query_params)
    # A misspelt filter is refused, not ignored: "?status=failed" for "?state=failed" would
    # answer every row as if it were the failed ones. DRF's own `format` is taken too.
    known = {*serializer.fields, api_settings.URL_FORMAT_OVERRIDE}
    unknown = sorted(name for name in request.query_params if name not in known)
    # DRF reads an empty parameter as an absent one (an HTML form's habit): here "?start="
    # is a mistake worth naming, not a request for the default.
    errors = {name[:100]: ["Unknown parameter."] for name in unknown[:20]} | {
        name: ["May not be empty."]
        for name in serializer.fields
        if request.query_params.get(name, None) == ""
    }
    if errors:
        raise ValidationError(errors)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _encode(values: list) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, kinds: tuple[type, ...]) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError
        out = []
        for value, kind in zip(values, kinds, strict=True):
            if kind is datetime:
                parsed = parse_datetime(value) if isinstance(value, str) else None
                if parsed is None or parsed.tzinfo is None:
                    raise ValueError
                # The range StrictDateTimeField holds `updated_since` to: a time beyond it
                # overflows in UTC (year 1 at +14:00) or is no position this API gave.
                if not 1900 <= parsed.year <= 2999 or abs(parsed.utcoffset()) > MAX_OFFSET:
                    raise ValueError
                out.append(parsed.astimezone(UTC))
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            else:
                raise ValueError
        return out
    except (ValueError, TypeError, UnicodeError, binascii.Error) as error:
        raise ValidationError({"cursor": ["Not a cursor this API gave."]}) from error


def paginate(
    queryset: QuerySet, query: dict, *, keys: tuple[str, ...] = ("updated_at", "id")
) -> tuple[list, str | None]:
    """One page of `queryset` after `query["cursor"]`; the rows and the next cursor."""
    kinds = tuple(
        datetime if queryset.model._meta.get_field(k).get_internal_type() == "DateTimeField"
        else int
        for k in keys
    )  # fmt: skip
    queryset = queryset.order_by(*keys)
    if query.get("cursor"):
        values = _decode(query["cursor"], kinds)
        after = Q()
        for i in range(len(keys) - 1, -1, -1):
            step = Q(**{f"{keys[i]}__gt": values[i]})
            after = step if i == len(keys) - 1 else step | (Q(**{keys[i]: values[i]}) & after)
        queryset = queryset.filter(after)
    limit = query.get("limit") or DEFAULT_LIMIT
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if not more or not rows:
        return rows, None
    last = rows[-1]
    return rows, _encode([getattr(last, k) for k in keys])


def page_serializer(child: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The response body of a list operation whose rows are `child`."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "results": child(many=True),
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
            ),
        },
    )
