"""Template previews for staff: render with a sample member and sample home data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from homes.models import Member
from institutions.models import Branding
from notifications.models import Delivery
from notifications.services.campaigns import home_context
from notifications.services.rendering import Rendered, RenderError, TemplateCache, render_delivery

SAMPLE_HOME = SimpleNamespace(
    member_id=0,
    property_id=0,
    address="12 Sample Lane",
    value=Decimal("412000"),
    value_low=Decimal("391000"),
    value_high=Decimal("433000"),
    as_of=date(2026, 5, 1),
    previous_value=Decimal("404000"),
    change_pct=Decimal("1.98"),
    equity=Decimal("187000"),
    borrowing_power=Decimal("104600"),
    top_offer_title="Home equity line of credit",
    top_offer_path="/offers/",
    member_rate=Decimal("6.875"),
)


class _SingleTemplate(TemplateCache):
    def __init__(self, environment, source: dict):
        super().__init__(environment)
        self._source = source

    def source(self, key: str) -> dict:
        return self._source


def template_preview(*, environment, source: dict, member=None) -> Rendered:
    """Render an (unsaved) template as a sample member would receive it; RenderError if not."""
    member = (
        member
        or Member.objects.filter(environment=environment, is_test=True).order_by("pk").first()
        or Member(
            environment=environment,
            first_name="Avery",
            last_name="Sample",
            email="avery@example.invalid",
        )
    )
    delivery = Delivery(
        environment=environment,
        template_key=source.get("key", "preview"),
        category=source["category"],
        member=member if member.pk else None,
        context={
            "home": home_context(environment, SAMPLE_HOME),
            "market_rate": "5.875",
            "appointment": {
                "when": "Thursday, November 26, 2026 at 10:30 AM PST",
                "officer": "Sam Officer",
                "title": "Conversation about Home equity line of credit",
                "offer": "Home equity line of credit",
                "member_name": "Avery Sample",
                "member_email": "avery@example.invalid",
                "note": "I'd like to talk about a kitchen remodel.",
                "path": "/appointments/",
                "admin_url": "",
            },
        },
    )
    branding = Branding.objects.filter(environment=environment).first()
    return render_delivery(
        environment=environment,
        delivery=delivery,
        member=member,
        branding=branding,
        templates=_SingleTemplate(environment, source),
        track=False,
    )


__all__ = ["RenderError", "template_preview"]
