"""Member pages on a phone, in a real browser (Debian Chromium): the value-history chart
and the equity breakdown at 375 and 320 CSS px, and reflow at 320 px (WCAG 1.4.10: no
sideways scrolling, even for long words)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from institutions.models import Branding
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.homes.a11y_helpers import OVERFLOW, base_url, browser_page, session_cookie
from tests.homes.test_member_pages import _home, _home_with_mortgage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_EMAIL = "maximiliana.worthington-smythe@cascadefederalcreditunion.org"


@pytest.fixture
def plain_http(settings):
    # The live server speaks plain HTTP: secure-only cookies would never come back.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False


#: Each text of the chart: its words, how far it reaches past the SVG's left and right
#: edges (positive: cut off), and its size on screen in CSS px.
CHART_TEXTS = """() => [...document.querySelectorAll('figure.chart svg text')].map(t => {
  const svg = t.ownerSVGElement, box = t.getBoundingClientRect();
  const frame = svg.getBoundingClientRect();
  const scale = frame.width / svg.viewBox.baseVal.width;
  return [t.textContent, Math.round(frame.left - box.left), Math.round(box.right - frame.right),
          Math.round(parseFloat(getComputedStyle(t).fontSize) * scale * 10) / 10];
})"""


def test_value_chart__home_worth_over_a_million__axis_labels_not_cut_off(
    tenant, live_server, plain_http
):
    """A $1,250,000 home (common in the King County sales the estimator learns from): every
    label of the chart lies inside the SVG on a 375 px phone (the value axis is labelled
    compactly, "$1.251M", with room measured from its widest label), while the chart's
    text alternative still gives every figure exactly."""
    member = MemberFactory(environment=tenant.production)
    _home(member, value=D(1250000), valuations=4)
    base = base_url(tenant.production, live_server)
    with browser_page(cookies=[session_cookie(member, base)], width=375, height=667) as page:
        page.goto(f"{base}/")
        texts = page.evaluate(CHART_TEXTS)
        table = page.locator("figure.chart details.chart-data table").text_content()
        caption = page.locator("figure.chart figcaption").text_content()
    assert texts, "no chart on the dashboard"
    cut = [(words, left, right) for words, left, right, _ in texts if left > 0 or right > 0]
    assert not cut, f"chart labels cut off at the SVG's edge (text, px past left, right): {cut}"
    assert all(f"${v:,}" in table for v in (1250000, 1249000, 1248000, 1247000)), table
    assert "from $1,247,000" in caption, caption
    assert "to $1,250,000" in caption, caption


@pytest.mark.parametrize("width", [375, 320])
def test_value_chart__phone__axis_labels_readable_size(tenant, live_server, plain_http, width):
    """On a phone the chart takes the card's whole width (the <figure> has no side margins)
    and its axis labels (dates and values) are drawn at 12 px or more, like the rest of the
    page's small print, so they can be read without zooming."""
    member = MemberFactory(environment=tenant.production)
    _home(member, valuations=6)
    base = base_url(tenant.production, live_server)
    with browser_page(cookies=[session_cookie(member, base)], width=width, height=667) as page:
        page.goto(f"{base}/")
        texts = page.evaluate(CHART_TEXTS)
        chart_width = page.locator("figure.chart svg").bounding_box()["width"]
    assert texts, "no chart on the dashboard"
    small = [(words, px) for words, _, _, px in texts if px < 12]
    assert not small, (
        f"chart drawn {chart_width:.0f} px wide on a {width} px screen; axis labels and their "
        f"size on screen (px): {small}"
    )


LIEN_CELLS = """() => [...document.querySelectorAll('table.breakdown td')]
  .filter(td => td.textContent.includes('$') && /^[\\u2212-]/.test(td.textContent.trim()))
  .map(td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    return [td.textContent.trim(), range.getClientRects().length > 0
      ? new Set([...range.getClientRects()].map(r => Math.round(r.top))).size : 0];
  })"""


def test_equity_breakdown__320px_phone__minus_sign_on_the_same_line_as_the_amount(
    tenant, live_server, plain_http
):
    """On a 320 px phone, a first mortgage of $312,345.67 reads "\u2212$312,345.67" on one line:
    the minus sign never wraps away from the amount (which would read as a positive figure
    under a stray dash)."""
    member = MemberFactory(environment=tenant.production)
    _home_with_mortgage(member, value=D(500000), balance=D("312345.67"))
    base = base_url(tenant.production, live_server)
    with browser_page(cookies=[session_cookie(member, base)], width=320, height=667) as page:
        page.goto(f"{base}/")
        cells = page.evaluate(LIEN_CELLS)
    assert cells, "no lien line in the equity breakdown"
    broken = [text for text, lines in cells if lines > 1]
    assert not broken, f"lien amounts broken over two lines at 320 px: {broken}"


def test_footer__institutions_long_support_email__member_pages_fit_320px(
    tenant, live_server, plain_http
):
    """An institution's support address like memberservices@cascadefederalcreditunion.org
    is one long word in the footer of every member page: at 320 px it wraps, and no page
    (dashboard, offer, sign-in) scrolls sideways."""
    env = tenant.production
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(
            support_email="memberservices@cascadefederalcreditunion.org",
            support_phone="1-800-555-0100",
        )
    member = MemberFactory(environment=env)
    _, (product,) = _home(member)
    base = base_url(env, live_server)
    found = {}
    with browser_page(cookies=[session_cookie(member, base)], width=320, height=667) as page:
        for path in ("/", f"/offers/{product.pk}/", "/login/"):
            page.goto(base + path)
            found[path] = page.evaluate(OVERFLOW)
    wide = {path: v for path, v in found.items() if v["scrollWidth"] > v["width"]}
    assert not wide, f"pages wider than the 320 px screen: {wide}"


def test_offer__disclosures_with_a_long_url__page_fits_320px(tenant, live_server, plain_http):
    """An offer's disclosures often end with the address of the full rate sheet, one long
    word: on a 320 px phone it wraps inside the card and the offer page does not scroll
    sideways."""
    member = MemberFactory(environment=tenant.production)
    _, (product,) = _home(member)
    with environment_scope(tenant.production):
        product.disclosures = (
            "Rates and terms: https://www.cascadefederalcreditunion.org/"
            "home-equity-lines-of-credit/rate-sheet-and-disclosures-2026.pdf"
        )
        product.save(update_fields=["disclosures"])
    base = base_url(tenant.production, live_server)
    with browser_page(cookies=[session_cookie(member, base)], width=320, height=667) as page:
        page.goto(f"{base}/offers/{product.pk}/")
        found = page.evaluate(OVERFLOW)
    assert found["scrollWidth"] <= found["width"], found


def test_login_sent__long_email_address__page_fits_320px(tenant, live_server, plain_http):
    """A member signs in on a 320 px phone with a long address: "Check your email" repeats
    it ("If maximiliana.worthington-smythe@cascadefederalcreditunion.org belongs to a
    member...") wrapped within the screen; the page does not scroll sideways."""
    base = base_url(tenant.production, live_server)
    with browser_page(width=320, height=667) as page:
        page.goto(f"{base}/login/")
        page.fill("input[name=email]", LONG_EMAIL)
        page.click("main button[type=submit]")
        page.wait_for_selector("text=Check your email")
        found = page.evaluate(OVERFLOW)
        text_right = page.evaluate(
            """() => { const p = [...document.querySelectorAll('main p')]
                 .find(p => p.textContent.includes('belongs to a member'));
               const r = document.createRange(); r.selectNodeContents(p);
               return Math.max(...[...r.getClientRects()].map(x => x.right)); }"""
        )
    assert text_right <= found["width"], (
        f"the sentence naming the address ends at {text_right:.0f} px on a "
        f"{found['width']} px screen (document {found['scrollWidth']} px wide)"
    )
    assert found["scrollWidth"] <= found["width"], found
