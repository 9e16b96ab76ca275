"""Colours derived from an institution's branding for the member pages."""

from __future__ import annotations

import re

from django import template

from institutions.models.branding import LIGHT_BACKGROUNDS, readable_on_light

register = template.Library()

__all__ = ["LIGHT_BACKGROUNDS", "text_on_light"]

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@register.filter
def text_on_light(color: str) -> str:
    """The colour as text on the pages' light backgrounds (readable_on_light); anything
    but a #rrggbb colour is left as it is."""
    if not isinstance(color, str) or not _HEX.match(color):
        return color
    return readable_on_light(color)
