"""API keys in the admin: made (the key shown once, never again), rotated, revoked."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from institutions.admin_base import TenantAdmin
from institutions.models import ApiKey, ApiScope
from institutions.services.api_keys import (
    DEFAULT_ROTATION_OVERLAP,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
)

KEY_ROLES = frozenset({"admin", "it"})


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


class ApiKeyNameForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]


class RotateForm(forms.Form):
    overlap_hours = forms.IntegerField(
        min_value=0,
        max_value=30 * 24,
        initial=int(DEFAULT_ROTATION_OVERLAP.total_seconds() // 3600),
        help_text="How long the old key keeps working, so your systems can switch over.",
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    """Keys of the selected environment: IT and admins manage them; nobody sees a key twice."""

    view_roles = KEY_ROLES
    change_roles = KEY_ROLES
    form = ApiKeyForm
    list_display = [
        "name",
        "display_prefix",
        "status",
        "scope_list",
        "expires_at",
        "last_used_at",
        "created_at",
        "created_by",
    ]
    list_filter = ["revoked_at"]
    list_select_related = ["environment", "created_by"]
    search_fields = ["name", "public_id"]
    readonly_fields = [
        "display_prefix",
        "status",
        "scope_list",
        "expires_at",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "rotated_from",
        "key_actions",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes", "expires_at"]
        return ["name", *self.readonly_fields]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ApiKeyForm if obj is None else ApiKeyNameForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the audit trail keeps which key did what

    @admin.display(description="Key")
    def display_prefix(self, obj):
        return f"{obj.display_prefix}_…"

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes or [])

    @admin.display(description="")
    def key_actions(self, obj):
        if obj is None or obj.pk is None or not obj.is_active():
            return "—"
        return format_html(
            '<a class="button" href="{}">Rotate</a> <a class="button" href="{}">Revoke</a>',
            reverse("admin:institutions_apikey_rotate", args=[obj.pk]),
            reverse("admin:institutions_apikey_revoke", args=[obj.pk]),
        )

    def save_model(self, request, obj, form, change):
        environment = self._environment(request)
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_create(
            environment=environment,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            actor=request.user,
        )
        obj.pk = key.pk
        request._chimney_new_key = (key, raw)  # shown by response_add, kept nowhere

    def response_add(self, request, obj, post_url_continue=None):
        key, raw = request._chimney_new_key
        return self._show_key(request, key, raw, "API key made")

    def _show_key(self, request, key, raw, title):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "key": key,
            "raw_key": raw,
            "opts": self.opts,
            "list_url": reverse("admin:institutions_apikey_changelist"),
        }
        response = render(request, "admin/institutions/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/rotate/",
                wrap(self.rotate_view),
                name="institutions_apikey_rotate",
            ),
            path(
                "<path:object_id>/revoke/",
                wrap(self.revoke_view),
                name="institutions_apikey_revoke",
            ),
            *super().get_urls(),
        ]

    def _key(self, request, object_id) -> ApiKey:
        self._ensure_visible(request, object_id)
        if not self._can_change(request):
            raise PermissionDenied("IT or an admin manages API keys.")
        return self.get_object(request, object_id)

    def _form_page(self, request, form, title, key):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": self.opts,
            "key": key,
        }
        return render(request, "admin/flags/flag/reason_form.html", context)

    def rotate_view(self, request, object_id):
        key = self._key(request, object_id)
        form = RotateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                new_key, raw = api_key_rotate(
                    environment=self._environment(request),
                    key=key,
                    overlap=timedelta(hours=form.cleaned_data["overlap_hours"]),
                    actor=request.user,
                )
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return redirect("admin:institutions_apikey_changelist")
            return self._show_key(request, new_key, raw, f"{key.name}: the new key")
        return self._form_page(request, form, f"Rotate {key}", key)

    def revoke_view(self, request, object_id):
        key = self._key(request, object_id)
        form = RevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            api_key_revoke(
                environment=self._environment(request),
                key=key,
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
            self.message_user(request, f"{key} is revoked: it is refused from now on.")
            return redirect("admin:institutions_apikey_changelist")
        return self._form_page(request, form, f"Revoke {key}", key)
