"""Member pages of flags: the same-origin event beacon, and the analytics consent answer."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from flags import consent, selectors
from flags.forms import AnalyticsConsentForm
from flags.services.events import events_ingest
from flags.services.plans import analytics_consent_set, analytics_consent_text
from homes.views import member_required
from institutions import events as member_events

MAX_BEACON_BYTES = 16 * 1024
MAX_BEACON_EVENTS = 20


def _same_origin(request) -> bool:
    """The Origin (or Referer) names this very host and scheme; Sec-Fetch-Site agrees."""
    if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin"):
        return False
    origin = request.headers.get("Origin") or ""
    if not origin:
        referer = request.headers.get("Referer") or ""
        origin = "/".join(referer.split("/")[:3]) if referer else ""
    return origin == f"{request.scheme}://{request.get_host()}"


# CSRF: the beacon is exempt from the token (navigator.sendBeacon cannot send a header)
# and protected instead by a JSON content type (never a simple cross-site form post), an
# Origin that must be this host, and the member's own session (SameSite=Lax cookie).
@csrf_exempt
@require_POST
def beacon(request):
    if not _same_origin(request):
        return JsonResponse(
            {"error": "Events are accepted from this site's own pages."}, status=403
        )
    if not request.member:
        return JsonResponse({"error": "Sign in first."}, status=401)
    if consent.visit_not_recorded(request):
        return JsonResponse(
            {"error": "A staff visit is not the member's activity: nothing was recorded."},
            status=403,
        )
    answer = selectors.analytics_consent_of(request.environment, request.member)
    if consent.state_of(answer) != consent.GRANTED:
        return JsonResponse(
            {"error": "Analytics is off for you: nothing was recorded.", "consent": False},
            status=403,
        )
    if request.content_type != "application/json":
        return JsonResponse({"error": "Send application/json."}, status=415)
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_BEACON_BYTES or len(request.body) > MAX_BEACON_BYTES:
        return JsonResponse({"error": f"At most {MAX_BEACON_BYTES} bytes."}, status=413)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "The body is not valid JSON."}, status=400)
    except RecursionError:  # nesting deeper than the parser follows: bad input, not a 500
        return JsonResponse({"error": "The body is nested too deeply."}, status=400)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not events:
        return JsonResponse(
            {"error": 'Send {"events": [{"name": ..., "properties": {...}}]}'}, status=400
        )
    if len(events) > MAX_BEACON_EVENTS:
        return JsonResponse({"error": f"At most {MAX_BEACON_EVENTS} events."}, status=400)
    recorded_here = sorted(
        {e.get("name") for e in events if isinstance(e, dict)} & member_events.SERVER_EVENTS
    )
    if recorded_here:
        return JsonResponse(
            {
                "error": f"{', '.join(recorded_here)}: recorded by the platform itself, "
                "never sent by a page. Nothing was recorded."
            },
            status=400,
        )
    # The member is the signed-in one, never one named by the page.
    rows = [
        {k: v for k, v in e.items() if k in ("name", "properties", "occurred_at")}
        if isinstance(e, dict)
        else e
        for e in events
    ]
    for row in rows:
        if isinstance(row, dict):
            row["member_id"] = request.member.pk
    try:
        result = events_ingest(environment=request.environment, events=rows, source="web")
    except ValidationError as exc:
        return JsonResponse({"error": exc.messages}, status=400)
    status = 400 if result.rejected and not (result.accepted or result.quarantined) else 202
    return JsonResponse(result.as_dict(), status=status)


def _next_page(request, wanted: str) -> str:
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted.split("#")[0]
    return reverse("flags:analytics-consent")


@member_required
@require_http_methods(["GET", "POST"])
def analytics_consent(request):
    """The member's analytics answer: a page of its own, and the form other pages include."""
    form = AnalyticsConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not form.is_valid():  # the page shows the form with its error
            return render(request, "flags/analytics_consent.html", {"form": form}, status=400)
        analytics_consent_set(
            environment=request.environment,
            member=request.member,
            granted=form.granted,
            source="member pages",
            text_shown=analytics_consent_text(form.granted),
        )
        consent.remember(request, form.granted)
        target = _next_page(request, form.cleaned_data["next"])
        return redirect(f"{target}{'&' if '?' in target else '?'}analytics=saved#analytics")
    return render(request, "flags/analytics_consent.html", {"form": None})
