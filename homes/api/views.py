"""Members with their homes and liens, vendor values, recorded sales, matched offers."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from homes.api import serializers as s
from homes.models import Lien, Member, MemberOffer, OfferMatch, Property
from homes.services.erasure import member_erase
from homes.services.sales import sales_check, sales_import
from homes.services.sync import ConcurrentChange, member_bulk_upsert, members_check
from homes.services.vendor import VendorImportError, vendor_values_import
from institutions.api.errors import BatchRowsInvalid, Conflict
from institutions.api.pagination import SyncQuerySerializer, page_serializer, paginate, query
from institutions.api.views import ApiView, validate_batch
from institutions.models import ApiScope

MEMBER_PATH = OpenApiParameter(
    "external_id",
    str,
    OpenApiParameter.PATH,
    pattern=s.EXTERNAL_ID_PATTERN,
    description="The member's external id.",
)


def _members(environment):
    """Members the API shows: not erased, homes and liens prefetched in two queries."""
    return Member.objects.filter(environment=environment, erased_at__isnull=True).prefetch_related(
        Prefetch(
            "properties",
            queryset=Property.objects.filter(environment=environment)
            .order_by("pk")
            .prefetch_related(
                Prefetch(
                    "liens",
                    queryset=Lien.objects.filter(environment=environment).order_by("position"),
                )
            ),
        )
    )


def _member(environment, external_id: str) -> Member:
    member = (
        Member.objects.filter(environment=environment, external_id=external_id, erased_at=None)
        .order_by("pk")
        .first()
    )
    if member is None:
        raise NotFound("No member with this external id here.")
    return member


class MembersView(ApiView):
    """Members of the environment, in bulk."""

    required_scopes = {"GET": ApiScope.MEMBERS_READ, "POST": ApiScope.MEMBERS_WRITE}

    @extend_schema(
        operation_id="members_list",
        tags=["members"],
        parameters=[SyncQuerySerializer],
        responses=page_serializer(s.MemberSerializer, "MemberPage"),
        description="Members with their homes and liens, oldest change first. Sync "
        "incrementally with `updated_since`; follow `next_cursor` to the end.",
    )
    def get(self, request):
        params = query(SyncQuerySerializer, request)
        members = _members(self.environment)
        if params.get("updated_since"):
            members = members.filter(updated_at__gte=params["updated_since"])
        rows, cursor = paginate(members, params)
        return Response(
            {"results": s.MemberSerializer(rows, many=True).data, "next_cursor": cursor}
        )

    @extend_schema(
        operation_id="members_upsert",
        tags=["members"],
        request=s.MemberBatchSerializer,
        responses=s.MemberUpsertResultSerializer,
        description="Create or update up to 1,000 members by external id, with their homes "
        "(by external id) and liens. Fields left out keep their value; a home's `liens`, "
        "when given, become exactly its liens. A batch with any bad row is refused whole "
        "(400, each bad row named by index) and nothing is saved. An email is refused when "
        "another member would still have it once the batch is applied; one member may give "
        "an address up and another take it in the same batch. New and changed homes "
        "are valued, and equity and offers recomputed, in the background.",
    )
    def post(self, request):
        data = validate_batch(
            s.MemberBatchSerializer,
            request.data,
            "members",
            check_rows=lambda good, bad: members_check(
                environment=self.environment, rows=good, unchecked=bad
            ),
        )
        try:
            result = member_bulk_upsert(
                environment=self.environment, rows=data["members"], actor_label=self.actor_label
            )
        except ConcurrentChange as error:
            raise Conflict() from error
        return Response(
            {
                "created": result.count("created"),
                "updated": result.count("updated"),
                "unchanged": result.count("unchanged"),
                "rows": result.rows,
            }
        )


class MemberDetailView(ApiView):
    """One member with their homes and liens."""

    required_scope = ApiScope.MEMBERS_READ
    tenant_model = Member
    lookup_field = "external_id"

    @extend_schema(
        operation_id="members_retrieve",
        tags=["members"],
        parameters=[MEMBER_PATH],
        responses=s.MemberSerializer,
    )
    def get(self, request, external_id: str):
        member = _member(self.environment, external_id)
        member = _members(self.environment).get(pk=member.pk)
        return Response(s.MemberSerializer(member).data)


class MemberEraseView(ApiView):
    """Erase a member's personal data."""

    required_scope = ApiScope.MEMBERS_WRITE
    tenant_model = Member
    lookup_field = "external_id"

    @extend_schema(
        operation_id="members_erase",
        tags=["members"],
        parameters=[MEMBER_PATH],
        request=None,
        responses=s.ErasedSerializer,
        description="Erase the member's personal data: name, email, external id, homes, "
        "liens and valuations are removed; events and deliveries are kept, anonymous. "
        "Upcoming appointments are cancelled (the loan officer is told without the member's "
        "name); past ones keep their time, officer and status only. Sessions and sign-in "
        "links of the member stop working. The member is then unknown here (404).",
    )
    def post(self, request, external_id: str):
        member = _member(self.environment, external_id)
        member = member_erase(
            environment=self.environment, member=member, actor_label=self.actor_label
        )
        return Response({"id": member.pk, "erased_at": member.erased_at})


class MemberOffersView(ApiView):
    """The offers matched for a member."""

    required_scope = ApiScope.OFFERS_READ
    tenant_model = Member
    lookup_field = "external_id"

    @extend_schema(
        operation_id="members_offers",
        tags=["offers"],
        parameters=[MEMBER_PATH],
        responses=s.OfferListSerializer,
        description="The offers matched for the member's homes, best first, with what the "
        "member did with each (viewed, saved, selected).",
    )
    def get(self, request, external_id: str):
        member = _member(self.environment, external_id)
        matches = list(
            OfferMatch.objects.filter(environment=self.environment, member=member)
            .select_related("product", "property")
            .order_by("property_id", "rank")
        )
        states = {
            state.product_id: state
            for state in MemberOffer.objects.filter(environment=self.environment, member=member)
        }
        for match in matches:
            state = states.get(match.product_id)
            match.first_viewed_at = state.first_viewed_at if state else None
            match.saved_at = state.saved_at if state else None
            match.selected_at = state.selected_at if state else None
        return Response(
            {
                "member": member.external_id,
                "results": s.OfferMatchSerializer(matches, many=True).data,
            }
        )


class ValuationsView(ApiView):
    """Vendor values, imported in bulk."""

    required_scope = ApiScope.HOMES_WRITE

    @extend_schema(
        operation_id="valuations_import",
        tags=["homes"],
        request=s.VendorValueBatchSerializer,
        responses=s.ImportResultSerializer,
        description="Import up to 1,000 values from a valuation vendor (AVM or appraisal), "
        "each naming its home by external id, with an FSD or both low and high. The homes "
        "are revalued at once. A batch with any bad row is refused whole.",
    )
    def post(self, request):
        data = validate_batch(s.VendorValueBatchSerializer, request.data, "valuations")
        rows = [
            {key: ("" if value is None else str(value)) for key, value in row.items()}
            for row in data["valuations"]
        ]
        try:
            result = vendor_values_import(
                environment=self.environment,
                rows=rows,
                vendor=data.get("vendor") or "vendor",
                actor_label=self.actor_label,
            )
        except VendorImportError as error:
            bad: dict[int, dict[str, list[str]]] = {}
            fields: dict[str, list[str]] = {}
            for e in error.errors:
                if e.row == 0:
                    fields.setdefault("valuations", []).append(f"{e.field} {e.message}")
                else:
                    bad.setdefault(e.row - 1, {}).setdefault(e.field, []).append(e.message)
            if not bad:
                raise ValidationError(fields) from error
            raise BatchRowsInvalid(
                [{"index": i, "fields": f} for i, f in bad.items()],
                total=len(rows),
                fields=fields,
            ) from error
        return Response({"imported": result.imported})


class SalesView(ApiView):
    """Recorded sales, imported in bulk."""

    required_scope = ApiScope.HOMES_WRITE

    @extend_schema(
        operation_id="sales_import",
        tags=["homes"],
        request=s.SaleBatchSerializer,
        responses=s.SaleImportResultSerializer,
        description="Create or update up to 1,000 recorded sales by external id: the "
        "comparables the built-in estimator values homes from. A batch with any bad row "
        "is refused whole.",
    )
    def post(self, request):
        data = validate_batch(
            s.SaleBatchSerializer,
            request.data,
            "sales",
            check_rows=lambda good, bad: sales_check(rows=good, unchecked=bad),
        )
        try:
            counts = sales_import(
                environment=self.environment, rows=data["sales"], actor_label=self.actor_label
            )
        except ConcurrentChange as error:
            raise Conflict() from error
        return Response(counts)
