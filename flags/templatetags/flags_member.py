"""Tags for member pages: the event beacon script and the analytics consent form."""

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from flags import consent
from flags.forms import AnalyticsConsentForm
from flags.services.plans import ANALYTICS_CONSENT_QUESTION

register = template.Library()


def _member_request(context):
    request = context.get("request")
    return request if request is not None and getattr(request, "member", None) else None


@register.simple_tag(takes_context=True)
def analytics_beacon(context):
    """The page-event script, for signed-in members who allowed analytics (else nothing).

    Not on a staff visit, but as a test member: staff seeing what a member sees are not
    that member's activity, except a test member's (recorded as test activity).
    """
    request = _member_request(context)
    if request is None or consent.visit_not_recorded(request):
        return ""
    if consent.member_consent(request) != consent.GRANTED:
        return ""
    return format_html(
        '<script src="{}" data-endpoint="{}" defer></script>',
        static("flags/beacon.js"),
        reverse("flags:beacon"),
    )


@register.inclusion_tag("flags/_analytics_consent.html", takes_context=True)
def analytics_consent_form(context, form=None):
    """The analytics question with the member's current answer (signed-in members only)."""
    request = _member_request(context)
    if request is None:
        return {"show": False}
    state = consent.member_consent(request)
    if form is None:
        initial = {consent.GRANTED: "yes", consent.REFUSED: "no"}.get(state)
        form = AnalyticsConsentForm(initial={"answer": initial, "next": request.path})
    return {
        "show": True,
        "form": form,
        "state": state,
        "question": ANALYTICS_CONSENT_QUESTION,
        "saved": request.GET.get("analytics") == "saved",
        "action": reverse("flags:analytics-consent"),
        "csrf_token": context.get("csrf_token"),
    }
