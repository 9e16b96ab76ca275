"""Promoted configuration: home settings and offer products (read-only in production)."""

from django.contrib import admin

from homes.admin.base import ViewOnlyTenantAdmin
from homes.models import HomeSettings, MemberOffer, OfferMatch, OfferProduct
from homes.services import home_settings_save, offer_product_delete, offer_product_save
from institutions.admin_base import TenantAdmin


@admin.register(HomeSettings)
class HomeSettingsAdmin(TenantAdmin):
    change_roles = frozenset({"admin", "lending"})
    production_read_only = True
    list_display = [
        "__str__",
        "provider_order",
        "fsd_threshold",
        "min_confidence",
        "enrollment_mode",
    ]
    fieldsets = [
        ("Valuations", {"fields": ["provider_order", "fsd_threshold"]}),
        (
            "Display filters (whether a figure is shown, never what it is)",
            {
                "fields": [
                    "min_confidence",
                    "owner_occupied_only",
                    "min_years_owned",
                    ("year_built_min", "year_built_max"),
                ]
            },
        ),
        ("Enrollment", {"fields": ["enrollment_mode", "no_home_message"]}),
        (
            "Rates used by offers",
            {"fields": ["prime_rate", "market_rate_30y", "default_max_cltv", "line_score_rate"]},
        ),
    ]

    def has_add_permission(self, request):
        environment = self._environment(request)
        exists = HomeSettings.objects.filter(environment=environment).exists()
        return super().has_add_permission(request) and not exists

    def save_model(self, request, obj, form, change):
        home_settings_save(environment=self._environment(request), settings=obj, actor=request.user)


@admin.register(OfferProduct)
class OfferProductAdmin(TenantAdmin):
    change_roles = frozenset({"admin", "marketing", "lending"})
    production_read_only = True
    list_display = ["name", "kind", "title", "is_active", "max_cltv", "min_amount", "max_amount"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "title"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "is_active", "display_order"]}),
        ("Copy", {"fields": ["title", "summary", "disclosures"]}),
        (
            "Rate and amounts",
            {
                "fields": [
                    "rate_type",
                    "apr",
                    ("margin", "rate_floor", "rate_cap"),
                    "max_cltv",
                    ("min_amount", "max_amount"),
                    "term_months",
                ]
            },
        ),
        (
            "Eligibility",
            {
                "fields": [
                    "requires_owner_occupied",
                    "max_existing_liens",
                    "min_confidence",
                    "min_equity",
                    "min_rate_gap_bps",
                    "max_ltv_for_pmi",
                ]
            },
        ),
        ("Call to action", {"fields": ["apply_url", "book_appointment"]}),
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "apply_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        offer_product_save(environment=self._environment(request), product=obj, actor=request.user)

    def delete_model(self, request, obj):
        offer_product_delete(
            environment=self._environment(request), product=obj, actor=request.user
        )


@admin.register(OfferMatch)
class OfferMatchAdmin(ViewOnlyTenantAdmin):
    view_roles = frozenset({"admin", "lending", "marketing"})
    list_display = ["member", "product", "rank", "benefit_kind", "benefit", "amount", "rate"]
    list_filter = ["product", "benefit_kind"]
    list_select_related = ["member", "product"]
    search_fields = ["member__email", "member__last_name"]


@admin.register(MemberOffer)
class MemberOfferAdmin(ViewOnlyTenantAdmin):
    """Lending staff follow up on the offers members saved and selected."""

    view_roles = frozenset({"admin", "lending"})
    list_display = ["member", "product", "view_count", "saved_at", "selected_at", "updated_at"]
    list_filter = ["product", ("selected_at", admin.EmptyFieldListFilter)]
    list_select_related = ["member", "product"]
    search_fields = ["member__email", "member__last_name"]
    ordering = ["-selected_at", "-saved_at"]
