"""The value-history chart, drawn server-side as inline SVG (no JavaScript, no images)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

WIDTH, HEIGHT, PAD_X, PAD_Y = 600, 260, 112, 28


@dataclass(frozen=True)
class Chart:
    points: str  # SVG polyline points
    dots: list[tuple[float, float, str]]  # x, y, label (for <title>)
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    summary: str
    rows: list[tuple[date, str]]  # every point as text: day, value
    width: int = WIDTH
    height: int = HEIGHT
    pad_x: int = PAD_X
    right: int = WIDTH - PAD_X // 2
    label_x: int = PAD_X - 8


def _money(value: Decimal) -> str:
    return f"${value:,.0f}"


def value_chart(history: list[tuple[date, Decimal]]) -> Chart | None:
    """Scale the history into the SVG box; None when there is nothing to draw."""
    if not history:
        return None
    values = [v for _, v in history]
    low, high = min(values), max(values)
    span = high - low or max(high * Decimal("0.05"), Decimal(1))
    low, high = low - span * Decimal("0.1"), high + span * Decimal("0.1")
    first, last = history[0][0], history[-1][0]
    days = max((last - first).days, 1)
    inner_w, inner_h = WIDTH - PAD_X - PAD_X // 2, HEIGHT - 2 * PAD_Y

    def xy(day: date, value: Decimal) -> tuple[float, float]:
        x = PAD_X + (inner_w * (day - first).days / days if len(history) > 1 else inner_w / 2)
        y = PAD_Y + float((high - value) / (high - low)) * inner_h
        return round(x, 1), round(y, 1)

    dots = [(*xy(d, v), f"{d:%b %Y}: {_money(v)}") for d, v in history]
    y_labels = [
        (round(PAD_Y + inner_h * i / 2, 1), _money(high - (high - low) * i / 2)) for i in range(3)
    ]
    x_labels = [(dots[0][0], f"{first:%b %Y}")]
    if len(history) > 1:
        x_labels.append((dots[-1][0], f"{last:%b %Y}"))
    summary = (
        f"Estimated value from {_money(values[0])} in {first:%B %Y} "
        f"to {_money(values[-1])} in {last:%B %Y}."
    )
    rows = [(d, _money(v)) for d, v in history]
    return Chart(" ".join(f"{x},{y}" for x, y, _ in dots), dots, y_labels, x_labels, summary, rows)
