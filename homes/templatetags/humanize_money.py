"""Money and percentage display for member pages."""

from decimal import Decimal

from django import template

register = template.Library()

#: U+2212 MINUS SIGN, written right before the currency symbol (minus sign, "$50,000"):
#: screen readers read it as "minus" (a hyphen before "$" is often not read at all).
MINUS = "\u2212"


@register.filter
def money(value) -> str:
    """$1,234 (whole dollars) or $1,234.56 when there are cents, with MINUS before the
    dollar sign below zero; '—' when unknown."""
    if value is None or value == "":
        return "—"
    value = Decimal(value)
    sign, value = (MINUS, -value) if value < 0 else ("", value)
    if value == value.to_integral_value():
        return f"{sign}${value:,.0f}"
    return f"{sign}${value:,.2f}"


@register.filter
def minus_money(value) -> str:
    """An amount taken away (a loan against the home), shown negative; '—' when unknown."""
    if value is None or value == "":
        return "—"
    return money(-Decimal(value))


@register.filter
def percent(value) -> str:
    """A fraction (0.6667) as a percentage (66.7%)."""
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:.1f}%"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
