"""Delivery status for the institution's systems: every message and where it stands."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from institutions.api.pagination import SyncQuerySerializer, page_serializer, paginate, query
from institutions.api.views import ApiView
from institutions.models import ApiScope
from notifications.models import Channel, Delivery


class DeliverySerializer(serializers.ModelSerializer):
    member = serializers.CharField(
        source="member.external_id",
        allow_null=True,
        help_text="The member's external id ('' once the member was erased).",
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "campaign_key",
            "template_key",
            "category",
            "member",
            "channel",
            "state",
            "reason",
            "attempts",
            "scheduled_at",
            "sent_at",
            "opened_at",
            "clicked_at",
            "created_at",
            "updated_at",
        ]


class DeliveryQuerySerializer(SyncQuerySerializer):
    member = serializers.CharField(
        required=False, max_length=100, help_text="Only this member's (external id)."
    )
    state = serializers.ChoiceField(choices=Delivery.State.choices, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    campaign_key = serializers.CharField(required=False, max_length=120)


class DeliveriesView(ApiView):
    """Delivery status of the environment's messages."""

    required_scope = ApiScope.METRICS_READ

    @extend_schema(
        operation_id="deliveries_list",
        tags=["deliveries"],
        parameters=[DeliveryQuerySerializer],
        responses=page_serializer(DeliverySerializer, "DeliveryPage"),
        description="Email and push deliveries with their state (pending, sending, sent, "
        "failed, dead, suppressed) and reason, oldest change first; sync incrementally "
        "with `updated_since`.",
    )
    def get(self, request):
        params = query(DeliveryQuerySerializer, request)
        rows = Delivery.objects.filter(environment=self.environment).select_related("member")
        if params.get("updated_since"):
            rows = rows.filter(updated_at__gte=params["updated_since"])
        if params.get("member"):
            rows = rows.filter(member__external_id=params["member"])
        for name in ("state", "channel", "campaign_key"):
            if params.get(name):
                rows = rows.filter(**{name: params[name]})
        page, cursor = paginate(rows, params)
        return Response(
            {"results": DeliverySerializer(page, many=True).data, "next_cursor": cursor}
        )


class DeliveryDetailView(ApiView):
    """One delivery and where it stands."""

    required_scope = ApiScope.METRICS_READ
    tenant_model = Delivery

    @extend_schema(
        operation_id="deliveries_retrieve", tags=["deliveries"], responses=DeliverySerializer
    )
    def get(self, request, pk: int):
        if pk >= 2**63:
            raise NotFound("No delivery with this id here.")
        delivery = (
            Delivery.objects.filter(environment=self.environment, pk=pk)
            .select_related("member")
            .first()
        )
        if delivery is None:
            raise NotFound("No delivery with this id here.")
        return Response(DeliverySerializer(delivery).data)
