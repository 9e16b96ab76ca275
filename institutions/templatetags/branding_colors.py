"""Colours derived from an institution's branding for the member pages."""

from __future__ import annotations

import re

from django import template

from institutions.models.branding import contrast_ratio

register = template.Library()

#: The light backgrounds brand-coloured text and focus outlines sit on: the cards and the
#: page behind them (member.css, homes.css).
LIGHT_BACKGROUNDS = ("#ffffff", "#f6f7f9")
#: WCAG 1.4.3 for body text; also more than the 3:1 a focus outline or a border needs.
TEXT_CONTRAST = 4.5

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _to_linear(c: int) -> float:
    c = c / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _to_srgb(c: float) -> int:
    c = max(0.0, min(1.0, c))
    c = c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
    return round(c * 255)


def _reads_on_light(color: str) -> bool:
    return all(contrast_ratio(color, bg) >= TEXT_CONTRAST for bg in LIGHT_BACKGROUNDS)


@register.filter
def text_on_light(color: str) -> str:
    """The colour itself when it reads at 4.5:1 on the page's light backgrounds, else the
    same hue darkened until it does.

    Darkening scales the colour's linear-light RGB channels by one factor: the hue and
    saturation stay, only the luminance falls (an orange becomes a brown-orange, a sky blue
    a deeper blue). Black always reaches the target, so there is always an answer.
    """
    if not isinstance(color, str) or not _HEX.match(color):
        return color
    color = color.lower()
    if _reads_on_light(color):
        return color
    linear = [_to_linear(int(color[i : i + 2], 16)) for i in (1, 3, 5)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    darkest_bg = min(
        0.2126 * _to_linear(int(bg[1:3], 16))
        + 0.7152 * _to_linear(int(bg[3:5], 16))
        + 0.0722 * _to_linear(int(bg[5:7], 16))
        for bg in LIGHT_BACKGROUNDS
    )
    target = (darkest_bg + 0.05) / TEXT_CONTRAST - 0.05
    factor = target / luminance
    while factor > 0:
        darker = "#" + "".join(f"{_to_srgb(c * factor):02x}" for c in linear)
        if _reads_on_light(darker):
            return darker
        factor -= 0.005  # rounding to whole sRGB steps can land just short
    return "#000000"
