"""Releases, read-only: what changed, who signed, when it was deployed, how the watch went."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from institutions.api.pagination import PageQuerySerializer, page_serializer, paginate, query
from institutions.api.views import ApiView
from institutions.models import ApiScope
from releases.models import Release, SignOff
from releases.selectors import releases_for


class SignOffSerializer(serializers.ModelSerializer):
    class Meta:
        model = SignOff
        fields = ["role", "decision", "at"]


class ReleaseSerializer(serializers.ModelSerializer):
    changes = serializers.SerializerMethodField(help_text="How many fields the release changes.")
    rolls_back = serializers.SerializerMethodField(help_text="The number it rolled back.")
    signoffs = SignOffSerializer(many=True, read_only=True)

    class Meta:
        model = Release
        fields = [
            "number",
            "kind",
            "title",
            "state",
            "state_reason",
            "created_at",
            "scheduled_for",
            "deployed_at",
            "watch_state",
            "watch_until",
            "changes",
            "rolls_back",
            "signoffs",
        ]

    def get_changes(self, obj) -> int:
        return len(obj.diff or [])

    def get_rolls_back(self, obj) -> int | None:
        return obj.rolls_back.number if obj.rolls_back_id else None


class ReleaseQuerySerializer(PageQuerySerializer):
    state = serializers.ChoiceField(choices=Release.State.choices, required=False)


def _releases(environment):
    # Releases live in staging: on the production host they are read outside its scope.
    signoffs = SignOff._base_manager.order_by("at", "id")
    return (
        releases_for(environment)
        .select_related("rolls_back")
        .prefetch_related(Prefetch("signoffs", queryset=signoffs))
    )


class ReleasesView(ApiView):
    """Releases, read-only."""

    required_scope = ApiScope.METRICS_READ

    @extend_schema(
        operation_id="releases_list",
        tags=["releases"],
        parameters=[ReleaseQuerySerializer],
        responses=page_serializer(ReleaseSerializer, "ReleasePage"),
        description="On the staging host every release made from staging; on the production "
        "host those deployed to production (promotions and rollbacks). By number.",
    )
    def get(self, request):
        params = query(ReleaseQuerySerializer, request)
        rows = _releases(self.environment)
        if params.get("state"):
            rows = rows.filter(state=params["state"])
        page, cursor = paginate(rows, params, keys=("number",))
        return Response({"results": ReleaseSerializer(page, many=True).data, "next_cursor": cursor})


class ReleaseDetailView(ApiView):
    """One release: its state, sign-offs, deploy and watch."""

    required_scope = ApiScope.METRICS_READ
    tenant_model = Release
    lookup_field = "number"

    @extend_schema(operation_id="releases_retrieve", tags=["releases"], responses=ReleaseSerializer)
    def get(self, request, number: int):
        if number >= 2**31:
            raise NotFound("No release with this number here.")
        release = _releases(self.environment).filter(number=number).first()
        if release is None:
            raise NotFound("No release with this number here.")
        return Response(ReleaseSerializer(release).data)
