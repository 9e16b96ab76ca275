"""Money and percentage display for member pages."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(value) -> str:
    """$1,234 (whole dollars) or $1,234.56 when there are cents; '—' when unknown."""
    if value is None or value == "":
        return "—"
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"${value:,.0f}"
    return f"${value:,.2f}"


@register.filter
def percent(value) -> str:
    """A fraction (0.6667) as a percentage (66.7%)."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:.1f}%"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
