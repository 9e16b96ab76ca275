"""Member home pages: dashboard, offers, enrollment and the digital-banking tile.

Pages only read what services stored (equity, matches); they never compute offers.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods
from waffle import flag_is_active

from homes import appointment_selectors, cached_pages, selectors
from homes.forms import OptInForm
from homes.middleware import settle_member
from homes.models import Member, OfferMatch, OfferProduct
from homes.services import (
    EnrollmentError,
    dashboard_viewed,
    member_auto_enroll,
    member_opt_in,
    member_opt_out,
    offer_save,
    offer_select,
    offer_view,
)
from homes.services.login import LoginError, launch_link_redeem, tile_link_build
from homes.views import member_required
from institutions.pages import tenant_object_page


def _enrollment_gate(request):
    """Auto-enroll a pending member, or send them to opt in; opted-out members see why."""
    member = request.member
    if member.enrollment == Member.Enrollment.PENDING:
        settings = selectors.page_home_settings(request.environment)
        if settings.enrollment_mode == settings.Enrollment.AUTO:
            member_auto_enroll(environment=request.environment, member=member)
        else:
            return redirect("homes:enroll")
    if member.enrollment == Member.Enrollment.OPTED_OUT:
        settings = selectors.page_home_settings(request.environment)
        return render(request, "homes/opted_out.html", {"settings": settings})
    return None


def _what_if(request, board) -> Decimal | None:
    if not request.META.get("QUERY_STRING"):
        return None  # most views: no need to build request.GET to find no value in it
    raw = request.GET.get("value")
    if not raw or board.property is None or board.property.value is None:
        return None
    try:
        value = Decimal(raw.replace(",", "").replace("$", ""))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    # Into the slider's range first: a huge number has no whole-dollar form to round to.
    return min(max(value, board.slider_min), board.slider_max).quantize(Decimal(1))


#: The dashboard's part that shows the home (value, chart, equity, borrowing, offers) is
#: cached per version of the home's figures (Dashboard.card_version); a day at most.
DASHBOARD_CARD_SECONDS = 24 * 3600
#: The whole page around it (homes.cached_pages) is kept for a visit's repeat views: it
#: costs a millisecond to render again from the card, and a page per member per day
#: would weigh on the shared cache.
DASHBOARD_PAGE_SECONDS = 3600
# Declared in flags.registry (a higher app): the equity-at-a-glance widget.
EQUITY_WIDGET_FLAG = "dashboard_equity_widget"


@member_required
def dashboard(request):
    gate = _enrollment_gate(request)
    if gate is not None:
        return gate
    signed_in = request.signed_in
    board = selectors.dashboard(request.environment, request.member, signed_in=signed_in)
    if request.method != "HEAD":  # a link checker or a preview is not the member viewing it
        dashboard_viewed(environment=request.environment, member=request.member)
    context = {
        "board": board,
        "member": request.member,
        "appointments": appointment_selectors.dashboard_appointments(
            request.environment, request.member, any_upcoming=signed_in.upcoming_appointment
        ),
        "card_seconds": DASHBOARD_CARD_SECONDS,
        "render_version": cached_pages.render_version(),
    }
    if board.property is not None and board.visible.show_value:
        board.what_if = _what_if(request, board)
        # Evaluated here, not in the cached part, so that every view counts its impression.
        context["equity_widget"] = flag_is_active(request, EQUITY_WIDGET_FLAG)
        if board.what_if is None and not context["appointments"]:
            # The whole page, under the card's version and the home's row (its address
            # is shown above the card); a what-if value or an appointment card is not kept.
            version = "|".join(
                [
                    board.card_version,
                    str(context["equity_widget"]),
                    cached_pages.row_version(board.property),
                ]
            )
            return cached_pages.render_page(
                request, "homes/dashboard.html", context, version=version,
                seconds=DASHBOARD_PAGE_SECONDS,
            )  # fmt: skip
    return render(request, "homes/dashboard.html", context)


@member_required
def offers(request):
    gate = _enrollment_gate(request)
    if gate is not None:
        return gate
    board = selectors.dashboard(request.environment, request.member)
    saved = selectors.saved_products(request.environment, board)
    return render(request, "homes/offers.html", {"board": board, "saved": saved})


#: The offer whose page the member is sent back to after saving or selecting it there.
OFFER_ACTED_SESSION_KEY = "homes_offer_acted"


def _product(request, pk) -> OfferProduct:
    return get_object_or_404(OfferProduct, pk=pk, environment=request.environment, is_active=True)


@tenant_object_page(OfferProduct)
@member_required
def offer_detail(request, pk: int):
    product = _product(request, pk)
    gate = _enrollment_gate(request)
    if gate is not None:
        return gate
    # The member's own figures only when the display filters let the dashboard show them;
    # the product's terms and disclosures always.
    settings = selectors.page_home_settings(request.environment)
    home = selectors.member_home(request.environment, request.member)
    match = None
    if selectors.visibility(settings, home, request.environment.institution.today()).show_value:
        match = (
            OfferMatch.objects.filter(member=request.member, product=product, property=home)
            .order_by("rank")
            .first()
        )
    # A HEAD (a link checker, a preview) is not a member viewing the offer, nor is the
    # return to the page after saving or selecting it there (_offer_action).
    if request.method == "HEAD" or request.session.pop(OFFER_ACTED_SESSION_KEY, 0) == product.pk:
        state = request.signed_in.states.get(product.pk)
    else:
        state = offer_view(environment=request.environment, member=request.member, product=product)
    can_book = appointment_selectors.offer_can_book(request.environment, product)
    return render(
        request,
        "homes/offer_detail.html",
        {"product": product, "match": match, "state": state, "can_book": can_book},
    )


def _offer_action(request, pk, action, done_message):
    product = _product(request, pk)  # another tenant's offer answers 404 before anything else
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    gate = _enrollment_gate(request)  # a member who has not opted in acts on no offer
    if gate is not None:
        return gate
    action(environment=request.environment, member=request.member, product=product)
    messages.success(request, done_message)
    # Back to the page the member pressed the button on: not a new view of the offer.
    request.session[OFFER_ACTED_SESSION_KEY] = product.pk
    return redirect("homes:offer", pk=product.pk)


@tenant_object_page(OfferProduct)
@member_required
def offer_save_view(request, pk: int):
    return _offer_action(request, pk, offer_save, "Saved. You'll find it under your offers.")


@tenant_object_page(OfferProduct)
@member_required
def offer_select_view(request, pk: int):
    return _offer_action(
        request, pk, offer_select, "Thanks! A loan officer will contact you about this offer."
    )


@member_required
@require_http_methods(["GET", "POST"])
def enroll(request):
    member = request.member
    if member.enrollment == Member.Enrollment.ENROLLED:
        return redirect("homes:home")  # nothing to confirm again (and nothing to record)
    form = OptInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member_opt_in(environment=request.environment, member=member, **form.cleaned_data)
        except EnrollmentError as error:
            for name, message in error.errors.items():
                form.add_error(name if name in form.fields else None, message)
        else:
            return redirect("homes:home")
    status = 400 if request.method == "POST" else 200
    return render(request, "homes/enroll.html", {"form": form}, status=status)


@member_required
@require_http_methods(["GET", "POST"])
def no_home(request):
    settings = selectors.page_home_settings(request.environment)
    if request.method == "POST":
        if request.member.enrollment != Member.Enrollment.OPTED_OUT:  # once, not per press
            member_opt_out(environment=request.environment, member=request.member)
        return render(request, "homes/opted_out.html", {"settings": settings})
    return render(request, "homes/no_home_confirm.html", {"settings": settings})


def _tile_figures(request, member):
    """The member's home and whether the tile may show its figures: to enrolled members,
    and to members not yet enrolled where the institution enrolls them automatically."""
    if member is None or member.enrollment == Member.Enrollment.OPTED_OUT:
        return None, False
    settings = selectors.page_home_settings(request.environment)
    if (
        member.enrollment != Member.Enrollment.ENROLLED
        and settings.enrollment_mode != settings.Enrollment.AUTO
    ):
        return None, False
    prop = selectors.member_home(request.environment, member)
    today = request.environment.institution.today()
    return prop, selectors.visibility(settings, prop, today).show_value


@xframe_options_exempt
def tile(request):
    """Compact tile for digital banking; only the institution's banking origins may frame it.

    Inside the bank's frame our session cookie is a third-party cookie, which browsers
    refuse: there digital banking opens `/tile/?token=<launch token>`, and the tile shows
    the figures of the token's member (verified and spent like a launch link) without a
    session. Its buttons then open, at the top level, single-use sign-in links minted for
    that member (homes.services.login.tile_link_build). Opened without a token (at the
    top level, or by a browser that keeps the cookie), the tile shows the session's member.

    A member who must opt in first sees only the buttons, which lead to the opt-in page."""
    environment = request.environment
    context = {}
    token = request.GET.get("token")
    if token is not None:
        try:
            member = launch_link_redeem(environment=environment, token=token)
        except LoginError as error:
            member, context["error"] = None, error
        else:
            context["links"] = {
                name: tile_link_build(environment=environment, member=member, next_path=path)
                for name, path in (("home", reverse("homes:home")),
                                   ("no_home", reverse("homes:no-home")))
            }  # fmt: skip
    else:
        member = settle_member(request)  # None when signed out (not a lazy None)
    context["prop"], context["shown"] = _tile_figures(request, member)
    response = render(
        request, "homes/tile.html", context, status=400 if "error" in context else 200
    )
    # The page names the member's figures and, by token, links that sign them in.
    add_never_cache_headers(response)
    origins = " ".join(environment.institution.digital_banking_origins or [])
    response["Content-Security-Policy"] = f"frame-ancestors 'self' {origins}".strip()
    return response
