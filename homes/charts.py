"""The value-history chart, drawn server-side as inline SVG (no JavaScript, no images).

The SVG scales to the width of its card, and its text with it: the box is narrow enough
that the axis labels stay at least 12 CSS px on a 320 px phone (a card 256 px wide). The
value axis shows compact labels ("$1.25M", "$850K"); the exact figures are in the points'
titles, the description, the caption and the table under the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

WIDTH, HEIGHT = 480, 260
#: Axis label size in SVG units: 24 units in a 480-unit box drawn 256 px wide is 12.8 px.
LABEL_SIZE = 24
PAD_TOP, PAD_BOTTOM = 24, 52  # room for half a value label above, the date labels below
GAP = 8  # between a value label and the plot

#: Advance widths in em, at the wide end of the fonts a branding may choose (Verdana's
#: digits are 0.64 em): the padding must hold the labels in any of them.
_EM = {".": 0.36, ",": 0.36, " ": 0.36, "K": 0.7, "M": 0.87}
_EM_DEFAULT = 0.66


def text_width(text: str, size: float = LABEL_SIZE) -> float:
    """How wide a label is drawn, in SVG units (an upper estimate)."""
    return sum(_EM.get(ch, _EM_DEFAULT) for ch in text) * size


@dataclass(frozen=True)
class Chart:
    points: str  # SVG polyline points
    dots: list[tuple[float, float, str]]  # x, y, label (for <title>)
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    summary: str
    rows: list[tuple[date, str]]  # every point as text: day, value
    pad_x: float  # left edge of the plot: right of the widest value label
    right: float  # right edge of the plot: room for half a date label after it
    width: int = WIDTH
    height: int = HEIGHT
    label_size: int = LABEL_SIZE

    @property
    def label_x(self) -> float:
        return self.pad_x - GAP

    @property
    def x_label_y(self) -> int:
        return self.height - 8


def _money(value: Decimal) -> str:
    return f"${value:,.0f}"


def _compact(value: Decimal, scale: Decimal, suffix: str, decimals: int) -> str:
    quantum = Decimal(1).scaleb(-decimals)
    shown = (value / scale).quantize(quantum, rounding=ROUND_HALF_UP)
    return f"${shown:,}{suffix}"


def axis_labels(values: list[Decimal]) -> list[str]:
    """Short labels for the value axis: in thousands or millions, with as few decimals as
    keep them apart ("$1.25M", "$850K", "$297.5K")."""
    top = max(abs(v) for v in values)
    if top >= 1_000_000:
        scale, suffix = Decimal(1_000_000), "M"
    elif top >= 10_000:
        scale, suffix = Decimal(1000), "K"
    else:
        return [_money(v) for v in values]
    labels = []
    for decimals in range(4):
        labels = [_compact(v, scale, suffix, decimals) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels


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

    ticks = [high - (high - low) * i / 2 for i in range(3)]
    y_texts = axis_labels(ticks)
    x_texts = [f"{first:%b %Y}"] + ([f"{last:%b %Y}"] if len(history) > 1 else [])
    half_date = max(text_width(t) for t in x_texts) / 2
    # The first date is centred under the plot's left edge, the last under its right edge.
    pad_x = round(max(max(text_width(t) for t in y_texts) + GAP, half_date) + 4, 1)
    right = round(WIDTH - half_date - 4, 1)
    inner_w, inner_h = right - pad_x, HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(day: date, value: Decimal) -> tuple[float, float]:
        x = pad_x + (inner_w * (day - first).days / days if len(history) > 1 else inner_w / 2)
        y = PAD_TOP + float((high - value) / (high - low)) * inner_h
        return round(x, 1), round(y, 1)

    dots = [(*xy(d, v), f"{d:%b %Y}: {_money(v)}") for d, v in history]
    y_labels = [(round(PAD_TOP + inner_h * i / 2, 1), text) for i, text in enumerate(y_texts)]
    x_labels = [(dots[0][0], x_texts[0])]
    if len(history) > 1:
        x_labels.append((dots[-1][0], x_texts[1]))
    summary = (
        f"Estimated value from {_money(values[0])} in {first:%B %Y} "
        f"to {_money(values[-1])} in {last:%B %Y}."
    )
    rows = [(d, _money(v)) for d, v in history]
    return Chart(
        " ".join(f"{x},{y}" for x, y, _ in dots),
        dots,
        y_labels,
        x_labels,
        summary,
        rows,
        pad_x=pad_x,
        right=right,
    )
