"""Events from the institution's systems, and engagement metrics for its warehouse."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from flags import selectors
from flags.api import serializers as s
from flags.services.events import MAX_BATCH, events_ingest
from institutions.api.errors import BatchRowsInvalid
from institutions.api.pagination import query
from institutions.api.views import ApiView
from institutions.models import ApiScope


class EventsView(ApiView):
    """Events sent by the institution's systems."""

    required_scope = ApiScope.EVENTS_WRITE

    @extend_schema(
        operation_id="events_ingest",
        tags=["events"],
        request=s.EventBatchSerializer,
        responses=s.EventIngestResultSerializer,
        description="Send up to 1,000 events. Each is checked against the environment's data "
        "plan (planned, unplanned or invalid; the plan's policy may quarantine it). This "
        "operation accepts the good rows of a batch: bad rows are not stored and are named "
        "in `rows` with their errors. When no row is good the answer is a 400 naming each. "
        "`is_test` comes from the member, never from the client.",
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or set(body) - {"events"}:
            raise ValidationError({"events": ['Send {"events": [...]} and nothing else.']})
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise ValidationError({"events": ["Send a non-empty list of events."]})
        if len(events) > MAX_BATCH:
            raise ValidationError({"events": [f"At most {MAX_BATCH:,} events per batch."]})
        try:
            result = events_ingest(environment=self.environment, events=events, source="api")
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error
        if not result.accepted and not result.quarantined:
            raise BatchRowsInvalid(
                [
                    {"index": row.index, "fields": _row_fields(row.errors)}
                    for row in result.rejected
                ],
                total=len(events),
                message="No event of the batch is valid; nothing was stored.",
            )
        return Response(result.as_dict(), status=status.HTTP_200_OK)


def _row_fields(errors: list[str]) -> dict[str, list[str]]:
    """ "name: required; …" → {"name": ["required; …"]}."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        name, _, message = error.partition(": ")
        if not message:
            name, message = "non_field_errors", error
        fields.setdefault(name, []).append(message)
    return fields


class EngagementView(ApiView):
    """Engagement metrics for the institution's warehouse."""

    required_scope = ApiScope.METRICS_READ

    @extend_schema(
        operation_id="metrics_engagement",
        tags=["metrics"],
        parameters=[s.MetricsQuerySerializer],
        responses=s.EngagementSerializer,
        description="Offer engagement (views, saves, selections and the selection rate with "
        "its interval) and the member funnel over a period of at most 92 days. The test "
        "cohort is left out unless `include_test=true`.",
    )
    def get(self, request):
        params = query(s.MetricsQuerySerializer, request)
        env, start, end = self.environment, params["start"], params["end"]
        include_test = params["include_test"]
        data = {
            "start": start,
            "end": end,
            "include_test": include_test,
            "events": selectors.events_count(env, start, end, include_test),
            "offers": selectors.offer_engagement(env, start, end, include_test),
            "funnel": selectors.funnel(env, start, end, include_test),
        }
        return Response(s.EngagementSerializer(data).data)
