"""Events in and engagement metrics out."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from flags.services.events import MAX_BATCH
from institutions.api.fields import QueryBooleanField, StrictDateTimeField

EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_.:-]{0,99}$"
DEFAULT_PERIOD = timedelta(days=7)
MAX_PERIOD = timedelta(days=92)


class EventInSerializer(serializers.Serializer):
    """One event. `is_test` is never taken from the client: it comes from the member."""

    name = serializers.RegexField(EVENT_NAME_PATTERN, max_length=100)
    member_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Chimney's id of the member."
    )
    member_external_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=100,
        help_text=(
            "Or the member's external id (the core banking id). With member_id too, both "
            "must name the same member."
        ),
    )
    properties = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Checked against the environment's data plan (at most 8 KB).",
    )
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="With a time zone; within the last 30 days. Default: when received.",
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventInSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)


class EventRowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "quarantined", "rejected"])
    event_id = serializers.IntegerField(allow_null=True)
    plan_status = serializers.CharField(help_text="planned, unplanned or invalid ('' if rejected).")
    errors = serializers.ListField(child=serializers.CharField())


class EventIngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rows = EventRowSerializer(many=True)


class MetricsQuerySerializer(serializers.Serializer):
    start = StrictDateTimeField(required=False, help_text="Default: 7 days before `end`.")
    end = StrictDateTimeField(required=False, help_text="Default: now.")
    include_test = QueryBooleanField(
        required=False, default=False, help_text="Count the test cohort too (default false)."
    )

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - DEFAULT_PERIOD
        if start >= end:
            raise serializers.ValidationError({"start": "Must be before the end."})
        if end - start > MAX_PERIOD:
            raise serializers.ValidationError({"start": "The period is at most 92 days."})
        return {**attrs, "start": start, "end": end}


class OfferEngagementSerializer(serializers.Serializer):
    offer_id = serializers.CharField()
    offer_kind = serializers.CharField()
    views = serializers.IntegerField()
    saves = serializers.IntegerField()
    selections = serializers.IntegerField()
    viewers = serializers.IntegerField(help_text="Members who viewed the offer.")
    selectors = serializers.IntegerField(
        help_text="Of those members, how many selected it at or after a view."
    )
    rate = serializers.FloatField(
        allow_null=True, help_text="selectors / viewers (null when nobody viewed it)."
    )
    low = serializers.FloatField(help_text="95% interval of the rate (Wilson).")
    high = serializers.FloatField()


class FunnelStepSerializer(serializers.Serializer):
    step = serializers.CharField()
    members = serializers.IntegerField()


class EngagementSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    include_test = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Accepted events in the period.")
    offers = OfferEngagementSerializer(many=True)
    funnel = FunnelStepSerializer(many=True)
