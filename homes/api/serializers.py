"""What the homes operations take and give: members with their homes and liens, vendor
values, recorded sales, matched offers."""

from __future__ import annotations

import decimal

from django.core.validators import RegexValidator
from rest_framework import serializers

from homes.models import Lien, Member, OfferMatch, Property
from institutions.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictDateField,
    StrictDecimalField,
    StrictEmailField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
    money,
    rate,
    today,
)

#: External ids travel in URLs: letters, digits and . _ : @ + - (first a letter or digit).
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}$"
external_id_validator = RegexValidator(
    EXTERNAL_ID_PATTERN, "1-100 letters, digits and . _ : @ + - (starting with a letter or digit)."
)
STATE_PATTERN = r"^[A-Z]{2}$"
MAX_PROPERTIES_PER_MEMBER = 10
MAX_LIENS_PER_PROPERTY = 9


def external_id_field(**kwargs) -> StrictCharField:
    return StrictCharField(max_length=100, validators=[external_id_validator], **kwargs)


def optional_text(max_length: int, **kwargs) -> StrictCharField:
    return StrictCharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


def _not_future(attrs: dict, *names: str) -> dict[str, str]:
    now = today()
    return {name: "Cannot be in the future." for name in names if (attrs.get(name) or now) > now}


class LienInSerializer(StrictSerializer):
    position = StrictIntegerField(min_value=1, max_value=9, help_text="1 = first lien.")
    kind = serializers.ChoiceField(choices=Lien.Kind.choices, required=False)
    original_amount = money(min_value="0.01")
    rate = rate(help_text="Interest rate in percent, e.g. 6.125.")
    term_months = StrictIntegerField(min_value=1, max_value=600, required=False)
    origination_date = StrictDateField()
    balance = money(help_text="The balance on `balance_as_of`.")
    balance_as_of = StrictDateField()
    pmi_monthly = money(required=False, max_value=100_000, help_text="PMI per month.")

    def validate(self, attrs):
        errors = _not_future(attrs, "origination_date", "balance_as_of")
        if "balance_as_of" not in errors and attrs["balance_as_of"] < attrs["origination_date"]:
            errors["balance_as_of"] = "Cannot be before the origination date."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PropertyInSerializer(StrictSerializer):
    """A home. Fields left out keep their stored value (a new home gets the defaults)."""

    external_id = external_id_field(help_text="The home's id in the institution's systems.")
    street = StrictCharField(max_length=200)
    city = optional_text(100)
    state = StrictCharField(
        max_length=2,
        required=False,
        allow_blank=True,
        validators=[RegexValidator(STATE_PATTERN, "Two capital letters, e.g. WA.")],
    )
    postal_code = optional_text(10)
    latitude = StrictFloatField(min_value=-90, max_value=90, required=False, allow_null=True)
    longitude = StrictFloatField(min_value=-180, max_value=180, required=False, allow_null=True)
    bedrooms = StrictIntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    bathrooms = StrictDecimalField(
        max_digits=4, decimal_places=2, min_value=0, max_value=99, required=False, allow_null=True
    )
    living_sqft = StrictIntegerField(
        min_value=100, max_value=1_000_000, required=False, allow_null=True
    )
    lot_sqft = StrictIntegerField(
        min_value=0, max_value=1_000_000_000, required=False, allow_null=True
    )
    year_built = StrictIntegerField(min_value=1600, max_value=2200, required=False, allow_null=True)
    owner_occupied = StrictBooleanField(required=False)
    purchase_date = StrictDateField(required=False, allow_null=True)
    purchase_price = money(required=False, allow_null=True)
    liens = LienInSerializer(
        many=True,
        required=False,
        max_length=MAX_LIENS_PER_PROPERTY,
        help_text="When given, the home's liens become exactly these (by position).",
    )

    def validate(self, attrs):
        errors = _not_future(attrs, "purchase_date")
        year = attrs.get("year_built")
        if year and year > today().year + 1:
            errors["year_built"] = "Cannot be in the future."
        positions: dict[int, int] = {}
        for index, lien in enumerate(attrs.get("liens") or []):
            if lien["position"] in positions:
                errors[f"liens.{index}.position"] = (
                    f"Repeats position {lien['position']} (lien {positions[lien['position']]})."
                )
            positions.setdefault(lien["position"], index)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class MemberInSerializer(StrictSerializer):
    """A member. Fields left out keep their stored value (a new member gets the defaults)."""

    external_id = external_id_field(help_text="The member's id in the core banking system.")
    email = StrictEmailField(max_length=254, required=False, allow_blank=True)
    first_name = optional_text(100)
    last_name = optional_text(100)
    is_test = StrictBooleanField(required=False, help_text="Part of the test cohort.")
    properties = PropertyInSerializer(
        many=True,
        required=False,
        max_length=MAX_PROPERTIES_PER_MEMBER,
        help_text="Homes to create or update (by external id); others are left alone.",
    )


class MemberBatchSerializer(StrictSerializer):
    members = MemberInSerializer(many=True, allow_empty=False, max_length=1000)


class UpsertRowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class MemberUpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rows = UpsertRowSerializer(many=True)


class LienSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lien
        fields = [
            "position",
            "kind",
            "original_amount",
            "rate",
            "term_months",
            "origination_date",
            "balance",
            "balance_as_of",
            "pmi_monthly",
        ]


class PropertySerializer(serializers.ModelSerializer):
    liens = LienSerializer(many=True, read_only=True)

    class Meta:
        model = Property
        fields = [
            "external_id",
            "street",
            "city",
            "state",
            "postal_code",
            "latitude",
            "longitude",
            "bedrooms",
            "bathrooms",
            "living_sqft",
            "lot_sqft",
            "year_built",
            "owner_occupied",
            "purchase_date",
            "purchase_price",
            "value",
            "value_low",
            "value_high",
            "confidence",
            "valued_on",
            "lien_balance",
            "equity",
            "ltv",
            "cltv",
            "borrowing_power",
            "computed_at",
            "liens",
        ]


class MemberSerializer(serializers.ModelSerializer):
    properties = PropertySerializer(many=True, read_only=True)

    class Meta:
        model = Member
        fields = [
            "id",
            "external_id",
            "email",
            "first_name",
            "last_name",
            "is_test",
            "enrollment",
            "created_at",
            "updated_at",
            "properties",
        ]


class ErasedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    erased_at = serializers.DateTimeField()


class MatchedProductSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    title = serializers.CharField()


class OfferMatchSerializer(serializers.ModelSerializer):
    product = MatchedProductSerializer()
    property = serializers.CharField(source="property.external_id", help_text="Its external id.")
    first_viewed_at = serializers.DateTimeField(allow_null=True)
    saved_at = serializers.DateTimeField(allow_null=True)
    selected_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        model = OfferMatch
        fields = [
            "rank",
            "product",
            "property",
            "benefit_kind",
            "benefit",
            "score",
            "amount",
            "rate",
            "monthly_payment",
            "computed_at",
            "first_viewed_at",
            "saved_at",
            "selected_at",
        ]


class OfferListSerializer(serializers.Serializer):
    member = serializers.CharField(help_text="The member's external id.")
    results = OfferMatchSerializer(many=True)


class VendorMoneyField(StrictDecimalField):
    """A vendor's amount in dollars (0 to 10 billion), kept to the cent as a CSV upload
    keeps it: rounded half up (homes.finance.rounding.cents), so both store the same."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 10_000_000_000)
        super().__init__(max_digits=14, decimal_places=2, **kwargs)
        self.rounding = decimal.ROUND_HALF_UP


class VendorValueInSerializer(StrictSerializer):
    property = external_id_field(help_text="The home's external id.")
    value = VendorMoneyField(min_value=1)
    low = VendorMoneyField(required=False, allow_null=True)
    high = VendorMoneyField(required=False, allow_null=True)
    fsd = StrictDecimalField(
        max_digits=6,
        decimal_places=4,
        min_value="0.0001",
        max_value=1,
        required=False,
        allow_null=True,
        help_text="Forecast standard deviation (0.08 = 8%); or give both low and high.",
    )
    as_of = StrictDateField()


class VendorValueBatchSerializer(StrictSerializer):
    vendor = StrictCharField(max_length=60, required=False, help_text='Default "vendor".')
    valuations = VendorValueInSerializer(many=True, allow_empty=False, max_length=1000)


class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField()


class SaleInSerializer(StrictSerializer):
    external_id = external_id_field(help_text="The sale's id in the records it comes from.")
    address = optional_text(200)
    price = money(min_value="0.01")
    sale_date = StrictDateField(required=False, allow_null=True)
    latitude = StrictFloatField(min_value=-90, max_value=90)
    longitude = StrictFloatField(min_value=-180, max_value=180)
    living_sqft = StrictIntegerField(min_value=100, max_value=1_000_000)
    lot_sqft = StrictIntegerField(
        min_value=0, max_value=1_000_000_000, required=False, allow_null=True
    )
    bedrooms = StrictIntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    bathrooms = StrictFloatField(min_value=0, max_value=99, required=False, allow_null=True)
    year_built = StrictIntegerField(min_value=1600, max_value=2200, required=False, allow_null=True)
    grade = StrictIntegerField(min_value=0, max_value=20, required=False, allow_null=True)
    condition = StrictIntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    view = StrictIntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    waterfront = StrictBooleanField(required=False, allow_null=True)
    floors = StrictFloatField(min_value=0, max_value=200, required=False, allow_null=True)
    yr_renovated = StrictIntegerField(min_value=0, max_value=2200, required=False, allow_null=True)
    sqft_basement = StrictIntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True
    )
    sqft_living15 = StrictIntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True
    )
    sqft_lot15 = StrictIntegerField(
        min_value=0, max_value=1_000_000_000, required=False, allow_null=True
    )
    zipcode = optional_text(10)

    def validate(self, attrs):
        errors = _not_future(attrs, "sale_date")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SaleBatchSerializer(StrictSerializer):
    sales = SaleInSerializer(many=True, allow_empty=False, max_length=1000)


class SaleImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
