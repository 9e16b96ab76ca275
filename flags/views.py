"""The same-origin event beacon for member pages."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from flags.services.events import events_ingest

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
    if request.content_type != "application/json":
        return JsonResponse({"error": "Send application/json."}, status=415)
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_BEACON_BYTES or len(request.body) > MAX_BEACON_BYTES:
        return JsonResponse({"error": f"At most {MAX_BEACON_BYTES} bytes."}, status=413)
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "The body is not valid JSON."}, status=400)
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not events:
        return JsonResponse(
            {"error": 'Send {"events": [{"name": ..., "properties": {...}}]}'}, status=400
        )
    if len(events) > MAX_BEACON_EVENTS:
        return JsonResponse({"error": f"At most {MAX_BEACON_EVENTS} events."}, status=400)
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
