"""Member pages: preferences, one-click unsubscribe (no login), tracking, Web Push."""

from __future__ import annotations

import base64
import json
from functools import wraps
from pathlib import Path

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from homes.models import Member
from homes.views import member_required
from institutions.clients import client_address
from institutions.pages import not_an_object_page
from notifications import tokens
from notifications.forms import PreferencesForm, PushSubscriptionForm
from notifications.models import Category, ConsentRecord, NotificationProfile, PushSubscription
from notifications.selectors import member_preferences, vapid_public_key
from notifications.services import engagement_record, preference_set, profile_update, unsubscribe
from notifications.services.preferences import UNSUBSCRIBE_ALSO, unsubscribe_question
from notifications.services.push import push_subscription_remove, push_subscription_save

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _preferences_page(
    request, member, *, method: str, template="notifications/preferences.html", extra=None
):
    environment = request.environment
    current = member_preferences(environment, member)
    profile = NotificationProfile.objects.filter(environment=environment, member=member).first()
    initial = {
        "digest_frequency": profile.digest_frequency if profile else "monthly",
        "quiet_start": profile.quiet_start if profile else None,
        "quiet_end": profile.quiet_end if profile else None,
    }
    form = PreferencesForm(request.POST or None, current=current, initial=initial)
    saved, status = False, 200
    if request.method == "POST" and "digest_frequency" in request.POST:
        if form.is_valid():
            with transaction.atomic():
                for (category, channel), enabled in form.choices().items():
                    if current.get((category, channel)) != enabled:
                        preference_set(
                            environment=environment,
                            member=member,
                            category=category,
                            channel=channel,
                            enabled=enabled,
                            method=ConsentRecord.Method.PREFERENCES
                            if method == "page"
                            else ConsentRecord.Method.UNSUBSCRIBE_LINK,
                            client=client_address(request),
                        )
                profile_update(
                    environment=environment,
                    member=member,
                    digest_frequency=form.cleaned_data["digest_frequency"],
                    quiet_start=form.cleaned_data["quiet_start"],
                    quiet_end=form.cleaned_data["quiet_end"],
                )
            saved = True
        else:
            status = 400
    return render(
        request,
        template,
        {
            "form": form,
            "saved": saved,
            "time_zone": environment.institution.time_zone,
            "vapid_public_key": vapid_public_key(environment),
            **(extra or {}),
        },
        status=status,
    )


@member_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    return _preferences_page(request, request.member, method="page")


def _token_member(request, token: str):
    try:
        member_id, category = tokens.unsubscribe_read(token, environment_id=request.environment.pk)
    except signing.BadSignature:
        return None, None
    # An erased member's emails outlive the erasure: their links show and record nothing.
    member = Member.objects.filter(
        environment=request.environment, pk=member_id, erased_at__isnull=True
    ).first()
    return member, category


@not_an_object_page
@require_http_methods(["GET", "POST"])
def manage(request, token: str):
    """Preferences from an email link, without signing in."""
    member, _ = _token_member(request, token)
    if member is None:
        return render(request, "notifications/link_invalid.html", status=404)
    return _preferences_page(request, member, method="link", extra={"token": token})


@not_an_object_page
@csrf_exempt  # RFC 8058: the mail client POSTs with no cookie or CSRF token; the token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    member, category = _token_member(request, token)
    if member is None or category not in Category.values or category == Category.ACCOUNT:
        return render(request, "notifications/link_invalid.html", status=404)
    if request.method == "GET":
        # GET never changes anything: mail scanners prefetch links. The words shown are
        # the ones the consent record keeps.
        return render(
            request,
            "notifications/unsubscribe.html",
            {"token": token, "question": unsubscribe_question(category), "also": UNSUBSCRIBE_ALSO},
        )
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    stopped = unsubscribe(
        environment=request.environment,
        member=member,
        category=category,
        method=ConsentRecord.Method.ONE_CLICK
        if one_click
        else ConsentRecord.Method.UNSUBSCRIBE_LINK,
        client=client_address(request),
        all_marketing=request.POST.get("scope") == "all",
    )
    if one_click:
        return HttpResponse("Unsubscribed.", content_type="text/plain")
    manage_token = tokens.unsubscribe_token(
        environment_id=request.environment.pk, member_id=member.pk, category="*"
    )
    return render(
        request,
        "notifications/unsubscribed.html",
        {"stopped": [Category(c).label for c in stopped], "manage_token": manage_token},
    )


@not_an_object_page
@require_GET
def open_pixel(request, token: str):
    try:
        delivery_id, _ = tokens.track_read(token, environment_id=request.environment.pk)
    except signing.BadSignature:
        delivery_id = None
    if delivery_id:
        engagement_record(environment=request.environment, delivery_id=delivery_id, kind="open")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@not_an_object_page
@require_GET
def click(request, token: str):
    try:
        delivery_id, url = tokens.track_read(token, environment_id=request.environment.pk)
    except signing.BadSignature as exc:
        raise Http404("This link is not valid.") from exc
    if not url.startswith(("https://", "http://")):
        raise Http404("This link is not valid.")
    engagement_record(environment=request.environment, delivery_id=delivery_id, kind="click")
    # Signed by us when the email was rendered: not an open redirect.
    return HttpResponseRedirect(url)


def _json(request):
    try:
        return json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None


@member_required
@require_POST
def push_subscribe(request):
    data = _json(request)
    if not isinstance(data, dict):
        return JsonResponse({"errors": {"__all__": ["Send a JSON object."]}}, status=400)
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    form = PushSubscriptionForm(
        {"endpoint": data.get("endpoint"), "p256dh": keys.get("p256dh"), "auth": keys.get("auth")}
    )
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    try:
        subscription = push_subscription_save(
            environment=request.environment,
            member=request.member,
            client=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            **form.cleaned_data,
        )
    except ValueError as exc:
        return JsonResponse({"errors": {"__all__": [str(exc)]}}, status=400)
    return JsonResponse({"subscribed": True, "id": subscription.pk}, status=201)


@member_required
@require_POST
def push_unsubscribe(request):
    data = _json(request)
    if not isinstance(data, dict) or not data.get("endpoint"):
        return HttpResponseBadRequest("Give the subscription's endpoint.")
    removed = push_subscription_remove(
        environment=request.environment,
        member=request.member,
        endpoint=str(data["endpoint"]),
        client=client_address(request),
    )
    return JsonResponse({"removed": removed})


def service_worker(request):
    """The service worker script, allowed to control the whole member host."""
    source = Path(settings.BASE_DIR / "static" / "notifications" / "sw.js").read_text()
    response = HttpResponse(source, content_type="application/javascript")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


def push_key(request):
    return JsonResponse({"public_key": vapid_public_key(request.environment)})


def provider_webhook_secret_set() -> bool:
    """Whether the provider's webhooks must prove a secret (anymail's WEBHOOK_SECRET)."""
    return bool(get_anymail_setting("webhook_secret", default=None))


def provider_webhook(view):
    """One of anymail's webhook views, answering 404 while no webhook secret is configured:
    without one anymail takes anyone's word, and its bounces and complaints stop a member's
    email."""

    @wraps(view)
    def webhook(request, *args, **kwargs):
        if not provider_webhook_secret_set():
            raise Http404("No provider webhooks here.")
        return view(request, *args, **kwargs)

    return webhook


__all__ = ["PushSubscription"]
