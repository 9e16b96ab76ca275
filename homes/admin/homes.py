"""Homes admin: properties and liens (saved through services), valuations, sales, vendor
value uploads and refresh runs with their progress."""

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from homes.admin.base import ViewOnlyTenantAdmin
from homes.models import Lien, Property, RefreshRun, Sale, Valuation, VendorValue
from homes.services import (
    RefreshInProgress,
    VendorImport,
    VendorImportError,
    lien_delete,
    lien_save,
    parse_vendor_csv,
    property_save,
    refresh_continue,
    refresh_start,
    vendor_values_import,
)
from institutions.admin_base import TenantAdmin

HOME_STAFF = frozenset({"admin", "it", "lending"})


class LienInline(admin.TabularInline):
    model = Lien
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["position", "kind", "balance", "balance_as_of", "rate", "term_months"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # liens are added on their own page, through the lien service


@admin.register(Property)
class PropertyAdmin(TenantAdmin):
    change_roles = HOME_STAFF
    list_display = ["address", "member", "value", "confidence", "equity", "borrowing_power"]
    list_filter = ["owner_occupied"]
    list_select_related = ["member"]
    search_fields = ["street", "postal_code", "external_id", "member__email"]
    raw_id_fields = ["member"]
    inlines = [LienInline]
    readonly_fields = [
        "value", "value_low", "value_high", "confidence", "valued_on", "lien_balance",
        "equity", "ltv", "cltv", "borrowing_power", "computed_at",
    ]  # fmt: skip

    def save_model(self, request, obj, form, change):
        property_save(environment=self._environment(request), prop=obj, actor=request.user)

    def save_related(self, request, form, formsets, change):
        form.save_m2m()  # the lien inline is read-only


@admin.register(Lien)
class LienAdmin(TenantAdmin):
    change_roles = HOME_STAFF
    list_display = ["__str__", "property", "balance", "balance_as_of", "rate", "term_months"]
    list_filter = ["kind"]
    list_select_related = ["property"]
    raw_id_fields = ["property"]
    search_fields = ["property__street", "property__external_id"]

    def save_model(self, request, obj, form, change):
        lien_save(environment=self._environment(request), lien=obj, actor=request.user)

    def delete_model(self, request, obj):
        lien_delete(environment=self._environment(request), lien=obj, actor=request.user)


@admin.register(Valuation)
class ValuationAdmin(ViewOnlyTenantAdmin):
    list_display = ["property", "provider", "value", "low", "high", "confidence", "fsd", "as_of"]
    list_filter = ["provider", "as_of"]
    list_select_related = ["property"]
    search_fields = ["property__street", "property__external_id"]
    date_hierarchy = "as_of"


@admin.register(Sale)
class SaleAdmin(ViewOnlyTenantAdmin):
    view_roles = HOME_STAFF
    list_display = ["__str__", "sale_date", "living_sqft", "year_built", "zipcode"]
    search_fields = ["address", "zipcode", "external_id"]


class VendorUploadForm(forms.Form):
    vendor = forms.CharField(max_length=60, initial="vendor")
    file = forms.FileField(
        help_text="CSV columns: property (external id, or #id), value, as_of (YYYY-MM-DD), "
        "and fsd or both low and high."
    )


@admin.register(VendorValue)
class VendorValueAdmin(ViewOnlyTenantAdmin):
    view_roles = HOME_STAFF
    list_display = ["property", "vendor", "value", "low", "high", "fsd", "as_of", "imported_at"]
    list_filter = ["vendor"]
    list_select_related = ["property"]
    change_list_template = "admin/homes/vendorvalue/change_list.html"

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="homes_vendorvalue_upload",
            ),
            *super().get_urls(),
        ]

    def can_upload(self, request) -> bool:
        return bool(self._roles(request) & HOME_STAFF) and self._environment(request) is not None

    def changelist_view(self, request, extra_context=None):
        extra = {"can_upload": self.can_upload(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def upload_view(self, request):
        """Upload a vendor CSV: all rows are stored, or none, with each bad row named."""
        if not self.can_upload(request):
            return render(request, "admin/homes/forbidden.html", status=403)
        form = VendorUploadForm(request.POST or None, request.FILES or None)
        errors, status = [], 200
        if request.method == "POST" and form.is_valid():
            try:
                upload = form.cleaned_data["file"]
                if upload.size > 20 * 1024 * 1024:
                    raise VendorImportError([])
                rows = parse_vendor_csv(upload.read())
                result = vendor_values_import(
                    environment=self._environment(request),
                    rows=rows,
                    vendor=form.cleaned_data["vendor"],
                    actor=request.user,
                )
            except UnicodeDecodeError:
                errors, status = ["The file is not UTF-8 text (save it as CSV UTF-8)."], 400
            except VendorImportError as error:
                errors = [str(e) for e in error.errors] or ["The file is over 20 MB."]
                status = 400
            else:
                queued = getattr(result.run, "queued", None) is not False
                level = messages.SUCCESS if queued else messages.WARNING
                self.message_user(request, _imported_message(result), level)
                return redirect(reverse("admin:homes_vendorvalue_changelist"))
        elif request.method == "POST":
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "errors": errors,
            "title": "Upload vendor values",
        }
        return render(request, "admin/homes/vendorvalue/upload.html", context, status=status)


def _number(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _imported_message(result: VendorImport) -> str:
    """What an upload did: the properties are revalued already, or a run revalues them."""
    imported = f"Imported {_number(result.imported, 'vendor value', 'vendor values')}"
    properties = _number(result.properties, "property", "properties")
    if result.run is None:
        return f"{imported}; revalued {properties}."
    if getattr(result.run, "queued", None) is False:
        return format_html(
            '{}; {} wait for a valuation: the task queue is unreachable, so <a href="{}">'
            "refresh {}</a> is recorded but not queued. Resume it once the queue is back; "
            "the hourly equity tick revalues them otherwise.",
            imported,
            properties,
            reverse("admin:homes_refreshrun_change", args=[result.run.pk]),
            result.run.pk,
        )
    return format_html(
        '{}; revaluing {} in the background: <a href="{}">refresh {}</a> shows its progress.',
        imported,
        properties,
        reverse("admin:homes_refreshrun_change", args=[result.run.pk]),
        result.run.pk,
    )


@admin.register(RefreshRun)
class RefreshRunAdmin(ViewOnlyTenantAdmin):
    view_roles = HOME_STAFF
    list_display = [
        "__str__",
        "scope",
        "status",
        "progress",
        "valued",
        "as_of",
        "requested_by",
        "heartbeat_at",
    ]
    list_filter = ["status", "scope"]
    readonly_fields = ["progress", "chunks"]
    change_list_template = "admin/homes/refreshrun/change_list.html"
    actions = ["resume"]

    @admin.display(description="Progress")
    def progress(self, obj):
        return format_html(
            '<progress max="100" value="{}"></progress> {}', obj.percent, obj.progress_text
        )

    @admin.display(description="Chunks (worked on in parallel)")
    def chunks(self, obj):
        counts = Counter(obj.chunks.values_list("status", flat=True))
        failed = obj.chunks.filter(status=RefreshRun.Status.FAILED).first()
        text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
        return f"{text}; {failed}: {failed.error}" if failed else text

    def get_urls(self):
        return [
            path(
                "start/",
                self.admin_site.admin_view(self.start_view),
                name="homes_refreshrun_start",
            ),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        return super().get_actions(request) if self._roles(request) & HOME_STAFF else {}

    def changelist_view(self, request, extra_context=None):
        extra = {"can_start": bool(self._roles(request) & HOME_STAFF), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def start_view(self, request):
        if request.method != "POST" or not self._roles(request) & HOME_STAFF:
            return redirect(reverse("admin:homes_refreshrun_changelist"))
        try:
            run = refresh_start(environment=self._environment(request), actor=request.user)
        except RefreshInProgress as busy:
            self.message_user(request, str(busy), level=messages.ERROR)
        else:
            if run.queued is False:
                self.message_user(
                    request,
                    f"Refresh {run.pk} of {run.total:,} properties is recorded but could not "
                    "be queued: the task queue is unreachable. It waits in this list, pending: "
                    "once the queue is back, select it and resume it (the list's action).",
                    level=messages.WARNING,
                )
            else:
                self.message_user(request, f"Refresh {run.pk} queued for {run.total:,} properties.")
        return redirect(reverse("admin:homes_refreshrun_changelist"))

    @admin.action(description="Resume the selected runs from where they stopped")
    def resume(self, request, queryset):
        environment = self._environment(request)
        for run in queryset.exclude(status=RefreshRun.Status.DONE):
            try:
                refresh_continue(environment=environment, run=run, actor=request.user)
            except RefreshInProgress as busy:
                self.message_user(
                    request, f"Refresh {run.pk} not resumed: {busy}", level=messages.ERROR
                )
                continue
            if run.queued is False:
                self.message_user(
                    request,
                    f"Refresh {run.pk} could not be queued: the task queue is unreachable. "
                    "It waits in this list, pending; resume it again once the queue is back.",
                    level=messages.WARNING,
                )
            else:
                self.message_user(
                    request, f"Refresh {run.pk} resumes where each of its chunks stopped."
                )
