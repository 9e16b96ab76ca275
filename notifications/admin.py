from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils.html import format_html

from institutions.admin_base import TenantAdmin
from institutions.selectors import staff_roles
from notifications.models import (
    ConsentRecord,
    Delivery,
    Journey,
    JourneyProgress,
    MessageTemplate,
    NotificationProfile,
    NotificationSettings,
    Preference,
    PushSubscription,
    VapidKey,
)
from notifications.preview import RenderError, template_preview
from notifications.services import deliveries_retry
from notifications.services.journeys import journey_steps_validate

READ_ONLY = frozenset()


@admin.register(Delivery)
class DeliveryAdmin(TenantAdmin):
    """The delivery log: every message, its state and reason; dead ones can be retried."""

    change_roles = READ_ONLY
    list_display = [
        "id",
        "campaign_key",
        "to",
        "channel",
        "state",
        "reason",
        "attempts",
        "scheduled_at",
        "sent_at",
        "sink",
    ]
    list_filter = ["state", "channel", "category", "template_key"]
    search_fields = [
        "campaign_key",
        "member__email",
        "recipient_email",
        "provider_message_id",
        "reason",
    ]
    list_select_related = ["member"]
    readonly_fields = [f.name for f in Delivery._meta.fields if f.name != "environment"]
    actions = ["retry"]

    @admin.display(description="To")
    def to(self, obj):
        return obj.member or f"{obj.recipient_name} <{obj.recipient_email}>"

    def has_retry_permission(self, request):
        return bool(self._roles(request) & {"admin", "it", "marketing"})

    @admin.action(description="Retry the selected dead or failed deliveries", permissions=["retry"])
    def retry(self, request, queryset):
        count = deliveries_retry(
            environment=self._environment(request),
            delivery_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,
        )
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)


#: The template fields a preview renders (the form's data, or a saved template's).
PREVIEW_FIELDS = (
    "key",
    "category",
    "subject",
    "text_body",
    "html_body",
    "push_title",
    "push_body",
    "push_link",
)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = [
            "key",
            "name",
            "category",
            "subject",
            "text_body",
            "html_body",
            "push_title",
            "push_body",
            "push_link",
        ]

    def clean(self):
        data = super().clean()
        environment = getattr(self, "environment", None)
        if environment is not None and not self.errors:
            source = {k: data.get(k) or "" for k in PREVIEW_FIELDS}
            try:
                template_preview(environment=environment, source=source)
            except RenderError as exc:
                raise ValidationError(f"The template does not render: {exc}") from exc
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantAdmin):
    form = MessageTemplateForm
    change_roles = frozenset({"admin", "marketing"})
    production_read_only = True
    list_display = ["key", "name", "category", "subject", "updated_at"]
    search_fields = ["key", "name", "subject"]
    readonly_fields = ["preview"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.environment = self._environment(request)
        return form

    @admin.display(description="Preview (sample member)")
    def preview(self, obj):
        if obj is None or not obj.pk:
            return "Save to see a preview."
        source = {f: getattr(obj, f) for f in PREVIEW_FIELDS}
        try:
            rendered = template_preview(environment=obj.environment, source=source)
        except RenderError as exc:
            return format_html('<p class="errornote">{}</p>', exc)
        return format_html(
            "<p><strong>Subject:</strong> {}</p>"
            '<iframe sandbox="" srcdoc="{}" style="width:100%;height:480px;border:1px solid #ccc">'
            "</iframe><pre style='white-space:pre-wrap'>{}</pre>"
            "<p><strong>Push:</strong> {} — {} ({})</p>",
            rendered.subject,
            rendered.html,
            rendered.text,
            rendered.push_title,
            rendered.push_body,
            rendered.push_url,
        )


class JourneyForm(forms.ModelForm):
    class Meta:
        model = Journey
        fields = ["name", "trigger", "threshold_pct", "steps", "exit_conditions", "active"]

    def clean_exit_conditions(self):
        value = self.cleaned_data["exit_conditions"]
        return [] if value is None else value  # left empty: none (the column takes no null)

    def clean(self):
        data = super().clean()
        if "steps" in data:  # exit conditions as given: 5 or "opted_out" is an error too
            journey_steps_validate(data.get("steps"), data.get("exit_conditions", []))
        return data


class JourneyProgressInline(admin.TabularInline):
    model = JourneyProgress
    extra = 0
    can_delete = False
    fields = ["member", "state", "step_index", "next_run_at", "exit_reason"]
    readonly_fields = fields
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("member")

    # Staff hold roles, not Django model permissions: whoever may see the journey sees its
    # members' progress; nobody edits it by hand (beat advances it).
    def has_view_permission(self, request, obj=None):
        environment = getattr(request, "admin_environment", None)
        return bool(environment and staff_roles(request.user, environment.institution))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Journey)
class JourneyAdmin(TenantAdmin):
    form = JourneyForm
    change_roles = frozenset({"admin", "marketing"})
    production_read_only = True
    list_display = ["name", "trigger", "active", "members_active"]
    inlines = [JourneyProgressInline]

    def get_queryset(self, request):
        # Counted in the list's one query, not one count per journey.
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_count=Count(
                    "progress", filter=Q(progress__state=JourneyProgress.State.ACTIVE)
                )
            )
        )

    @admin.display(description="Members in progress", ordering="active_count")
    def members_active(self, obj):
        return obj.active_count


@admin.register(JourneyProgress)
class JourneyProgressAdmin(TenantAdmin):
    change_roles = READ_ONLY
    list_display = ["journey", "member", "state", "step_index", "next_run_at", "exit_reason"]
    list_filter = ["state", "journey"]
    list_select_related = ["journey", "member"]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(TenantAdmin):
    change_roles = frozenset({"admin", "it", "marketing", "lending"})
    list_display = ["__str__", "market_rate", "refinance_threshold", "unopened_limit"]


@admin.register(VapidKey)
class VapidKeyAdmin(TenantAdmin):
    """The public key is shown; the private key never leaves the database (encrypted)."""

    change_roles = frozenset({"admin", "it"})
    list_display = ["public_key", "created_at"]
    fields = ["public_key", "created_at"]
    readonly_fields = ["public_key", "created_at"]

    def has_add_permission(self, request):
        environment = self._environment(request)
        return (
            super().has_add_permission(request)
            and not VapidKey.objects.filter(environment=environment).exists()
        )

    def has_change_permission(self, request, obj=None):
        # A key has nothing to edit: its page is for looking at (no Save to record again).
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from institutions.models import AuditEntry
        from institutions.services import audit_record
        from notifications.channels.push import vapid_key_generate

        environment = self._environment(request)
        key = vapid_key_generate(environment=environment)
        obj.pk = key.pk
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=request.user,
            environment=environment,
            obj=key,
            after={"public_key": key.public_key},
        )


class _ReadOnlyTenantAdmin(TenantAdmin):
    change_roles = READ_ONLY


@admin.register(PushSubscription)
class PushSubscriptionAdmin(_ReadOnlyTenantAdmin):
    list_display = ["member", "endpoint", "created_at"]
    list_select_related = ["member"]
    # Not the subscription's keys: its auth secret is the member's browser's, for the
    # messages sent to it, and not for anyone to read.
    fields = ["member", "endpoint", "user_agent", "created_at"]


@admin.register(Preference)
class PreferenceAdmin(_ReadOnlyTenantAdmin):
    list_display = ["member", "category", "channel", "enabled", "updated_at"]
    list_filter = ["category", "channel", "enabled"]
    list_select_related = ["member"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(_ReadOnlyTenantAdmin):
    list_display = ["at", "member", "category", "channel", "granted", "method", "text_shown"]
    list_filter = ["granted", "method", "category", "channel"]
    list_select_related = ["member"]


@admin.register(NotificationProfile)
class NotificationProfileAdmin(_ReadOnlyTenantAdmin):
    list_display = [
        "member",
        "digest_frequency",
        "quiet_start",
        "quiet_end",
        "unopened_count",
        "email_bounced_at",
        "email_bounced_address",
    ]
    list_select_related = ["member"]
