"""The testing-in-production dashboard: requests, events, engagement, funnel, variants."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone

from flags import charts, registry, selectors


def _delivery_totals(points) -> dict:
    failed = sum(p["failed"] for p in points)
    finished = sum(p["finished"] for p in points)
    return {
        "failed": failed,
        "finished": finished,
        "percent": failed / finished * 100 if finished else None,
    }


def dashboard_view(model_admin, request):
    environment = model_admin._environment(request)
    if environment is None or not model_admin.has_view_permission(request):
        raise PermissionDenied
    include_test = request.GET.get("include_test") == "1"
    try:
        hours = max(1, min(int(request.GET.get("hours", 24)), 24 * 31))
    except ValueError:
        hours = 24
    start, end = selectors.default_window(timezone.now(), hours)
    series = selectors.request_series(environment, start, end, include_test)
    tz = environment.institution.tz

    def label(moment):
        return timezone.localtime(moment, tz).strftime("%m-%d %H:%M")

    deliveries = selectors.delivery_failures(environment, start, end, include_test)
    flag_name = request.GET.get("flag") or registry.DASHBOARD_EQUITY_WIDGET
    funnel = selectors.funnel(environment, start, end, include_test)
    channels = selectors.channel_choices(environment, start, end, include_test)
    variants = selectors.variant_comparison(environment, flag_name, start, end, include_test)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Testing in production: dashboards",
        "opts": model_admin.opts,
        "include_test": include_test,
        "hours": hours,
        "requests_chart": charts.line_chart(
            [(label(r["minute"]), r["count"]) for r in series], title="Requests per minute"
        ),
        "errors_chart": charts.line_chart(
            [(label(r["minute"]), r["error_rate"] * 100) for r in series],
            title="5xx rate",
            unit="%",
        ),
        "latency_chart": charts.line_chart(
            [(label(r["minute"]), r["p95"]) for r in series], title="p95 latency", unit=" ms"
        ),
        "events_chart": charts.line_chart(
            [
                (label(r["hour"]), r["n"])
                for r in selectors.events_per_hour(environment, start, end, include_test)
            ],
            title="Events per hour",
        ),
        "deliveries": deliveries is not None,
        "delivery_points": deliveries or [],
        "delivery_chart": charts.line_chart(
            [(label(p["start"]), p["rate"] * 100) for p in deliveries or [] if p["finished"]],
            title="Delivery failure rate",
            unit="%",
        ),
        "delivery_counts_chart": charts.bar_chart(
            [(label(p["start"]), p["failed"]) for p in deliveries or [] if p["failed"]],
            title="Failed or dead deliveries",
        ),
        "delivery_totals": _delivery_totals(deliveries or []),
        "funnel_chart": charts.bar_chart(
            [(step["step"], step["members"]) for step in funnel], title="Member funnel"
        ),
        "channels_chart": charts.bar_chart(
            list(channels.items()), title="Communication method chosen"
        ),
        "offers": selectors.offer_engagement(environment, start, end, include_test),
        "flag_name": flag_name,
        "flag_names": list(registry.declared()),
        "variants": variants,
        "totals": {
            "requests": sum(r["count"] for r in series),
            "errors": sum(r["errors"] for r in series),
        },
    }
    return render(request, "admin/flags/dashboard.html", context)
