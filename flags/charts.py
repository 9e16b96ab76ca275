"""Server-rendered SVG charts for the admin dashboards (no JavaScript, no library)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def line_chart(
    points: list[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 160,
) -> SafeString:
    """A polyline over the points, with the maximum and the first/last labels."""
    pad = 28
    if not points:
        return format_html(
            '<svg role="img" aria-label="{0}: no data" width="{1}" height="40">'
            '<text x="4" y="24">{0}: no data in this window</text></svg>',
            title,
            width,
        )
    top = max(v for _, v in points) or 1.0
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = " ".join(
        f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
        for i, (_, v) in enumerate(points)
    )
    return format_html(
        '<svg role="img" aria-label="{title}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'class="chimney-chart"><title>{title}</title>'
        '<text x="{pad}" y="14" font-size="12">{title} (max {top}{unit})</text>'
        '<line x1="{pad}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/>'
        '<polyline fill="none" stroke="#1f4e79" stroke-width="2" points="{coords}"/>'
        '<text x="{pad}" y="{label}" font-size="10">{first}</text>'
        '<text x="{right}" y="{label}" font-size="10" text-anchor="end">{last}</text></svg>',
        title=title,
        w=width,
        h=height,
        pad=pad,
        top=f"{top:.3g}",
        unit=unit,
        base=height - pad,
        right=width - pad,
        coords=coords,
        label=height - 8,
        first=points[0][0],
        last=points[-1][0],
    )


def bar_chart(bars: list[tuple[str, float]], *, title: str, width: int = 640) -> SafeString:
    """Horizontal bars with their values (funnel steps, channels, variants)."""
    row, label_w = 22, 180
    top = max((v for _, v in bars), default=0) or 1.0
    height = 24 + row * len(bars)
    rows = format_html_join(
        "",
        '<text x="0" y="{}" font-size="12">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="14" fill="#e07a1f"/>'
        '<text x="{}" y="{}" font-size="12">{}</text>',
        (
            (
                30 + i * row,
                label,
                label_w,
                19 + i * row,
                f"{(width - label_w - 60) * value / top:.1f}",
                f"{label_w + (width - label_w - 60) * value / top + 4:.1f}",
                30 + i * row,
                f"{value:g}",
            )
            for i, (label, value) in enumerate(bars)
        ),
    )
    return format_html(
        '<svg role="img" aria-label="{0}" width="{1}" height="{2}" class="chimney-chart">'
        '<title>{0}</title><text x="0" y="12" font-size="12">{0}</text>{3}</svg>',
        title,
        width,
        height,
        rows,
    )
