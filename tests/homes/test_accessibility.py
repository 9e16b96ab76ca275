"""Accessibility of the member pages: their markup, read through Django's test client (the
pages are server-rendered and must work without JavaScript), and in a real browser (Debian
Chromium): brand-colour contrast, focus indicator, and the mobile (375 px) layout of the
dashboard and offer pages."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled
from PIL import Image

from homes.models import Member
from institutions.models import Branding
from institutions.models.branding import contrast_ratio, readable_text_color
from institutions.templatetags.branding_colors import LIGHT_BACKGROUNDS, text_on_light
from institutions.tenancy import environment_scope
from notifications import tokens
from tests.conftest import member_client, staff_client
from tests.factories import MemberFactory, staff_user
from tests.homes.a11y_helpers import (
    Elements,
    base_url,
    browser_page,
    contrast,
    session_cookie,
)
from tests.homes.factories import (
    PropertyFactory,
    appointment_settings_factory,
    home_settings_factory,
    officer_with_week,
)
from tests.homes.test_member_pages import _home

pytestmark = pytest.mark.django_db

FOCUSABLE = {"a", "button", "input", "select", "textarea", "summary"}


def _first_focusable(html: str) -> tuple[str, dict]:
    for tag, attrs, stack in Elements(html).tags:
        if "body" not in stack or tag not in FOCUSABLE:
            continue
        if tag == "a" and "href" not in attrs:
            continue
        if tag == "input" and attrs.get("type") == "hidden":
            continue
        return tag, attrs
    raise AssertionError("no focusable element")


def test_dashboard__first_focusable_element__is_a_skip_link_to_main(member):
    """A keyboard or switch user must pass the header (institution banner, staging and
    staff-visit notes, Sign out) on every page: there is no "Skip to main content" link
    (WCAG 2.4.1). The first focusable element should be `<a href="#main">`."""
    _home(member)
    html = member_client(member).get("/").content.decode()
    tag, attrs = _first_focusable(html)
    assert (tag, attrs.get("href")) == ("a", "#main"), (
        f"first focusable element of / is <{tag} {attrs}> (templates/homes/base.html has no "
        'skip link before <header class="site-header">)'
    )


def test_dashboard__navigation__nav_landmark_links_to_notification_preferences(member):
    """Member pages have no <nav> at all, and no member page links to "What we send you"
    (/notifications/preferences/): a signed-in member can only reach it through a link in
    an email. The header should carry a navigation landmark that includes it."""
    _home(member)
    tags = Elements(member_client(member).get("/").content.decode()).tags
    navs = [attrs for tag, attrs, _ in tags if tag == "nav"]
    in_nav = [a.get("href") for tag, a, stack in tags if tag == "a" and "nav" in stack]
    assert navs, f"<nav> elements on /: {navs}"
    assert "/notifications/preferences/" in in_nav, f"links inside a <nav>: {in_nav}"


def test_dashboard_chart__value_history__every_point_available_as_text(member):
    """The value-history chart is an `<svg role="img">`: its points' <title>s are hidden
    from screen readers (children of role=img are presentational) and show only on mouse
    hover. The only text equivalent is "from $295,000 in ... to $300,000 in ...", so a blind
    member never learns the months in between. Each plotted value should be in a table or
    list (or other text) outside the image."""
    _home(member, valuations=6)
    html = member_client(member).get("/").content.decode()
    svg = re.search(r"<svg[^>]*role=\"img\".*?</svg>", html, re.S).group(0)
    points = re.findall(r"<circle[^>]*><title>([^<]+)</title>", svg)
    assert len(points) == 6
    outside = re.sub(r"<[^>]+>", " ", html.replace(svg, ""))
    missing = [p for p in points if p.split(": ")[1] not in outside]
    assert not missing, (
        f'values of <svg role=img aria-labelledby="chart-t chart-d"> with no text '
        f"equivalent outside the image: {missing}"
    )


def test_member_pages__title__names_the_page_not_only_the_institution(member):
    """Several pages leave {% block title %} alone, so the browser tab and the first thing
    a screen reader says is only the institution's name (WCAG 2.4.2): the no-home
    confirmation, the opted-out page, the sign-in error, "Check your email", the
    unsubscribe page and its confirmation."""
    env = member.environment
    bare = env.institution.display_name
    token = tokens.unsubscribe_token(environment_id=env.pk, member_id=member.pk, category="offers")
    anonymous = Client(HTTP_HOST=env.host)
    pages = {
        "GET /no-home/": lambda: member_client(member).get("/no-home/"),
        "GET /login/<bad token>/": lambda: anonymous.get("/login/not-a-token/"),
        "POST /login/": lambda: anonymous.post("/login/", {"email": "someone@example.test"}),
        "GET /notifications/unsubscribe/<token>/": lambda: anonymous.get(
            f"/notifications/unsubscribe/{token}/"
        ),
        "POST /notifications/unsubscribe/<token>/": lambda: anonymous.post(
            f"/notifications/unsubscribe/{token}/"
        ),
        "POST /no-home/": lambda: member_client(member).post("/no-home/"),
    }
    untitled = {}
    for name, fetch in pages.items():
        html = fetch().content.decode()
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()
        if title == bare:
            untitled[name] = title
    assert not untitled, f"<title> is only the institution's name on: {untitled}"


@pytest.fixture
def booking(member):
    env = member.environment
    appointment_settings_factory(env, enabled=True)
    officer = officer_with_week(env, name="Sam Rivera")
    client = member_client(member)
    page = client.get("/appointments/book/").content.decode()
    start = re.search(r'name="start" value="([^"]+)"', page).group(1)
    return client, {"officer": officer.pk, "start": start, "tz": "America/New_York"}


def test_book__note_error__textarea_marked_invalid_and_described_by_the_message(booking):
    """A note that is too long is refused with "Please keep the note under 1000
    characters", but the <textarea id="note"> has neither aria-invalid nor
    aria-describedby pointing at the message printed under it: a screen-reader user who
    returns to the field hears nothing wrong with it (Django's own fields do both)."""
    client, data = booking
    response = client.post("/appointments/book/", {**data, "note": "x" * 1001})
    assert response.status_code == 400
    html = response.content.decode()
    textarea = re.search(r"<textarea[^>]*id=\"note\"[^>]*>", html).group(0)
    described = re.search(r'aria-describedby="([^"]+)"', textarea)
    messages = [
        re.search(rf'id="{ident}"[^>]*>(.*?)</', html, re.S) for ident in
        (described.group(1).split() if described else [])
    ]  # fmt: skip
    assert 'aria-invalid="true"' in textarea, textarea
    assert any(m and "keep the note under" in m.group(1) for m in messages), (
        f'{textarea} (templates/homes/appointment_book.html; the error is <p class="error">)'
    )


def test_readable_text_color__any_brand_colour__reaches_4_5_to_1():
    """Whatever colour an institution picks, the text chosen for it is readable."""
    levels = range(0, 256, 15)
    worst = min(
        (contrast_ratio(readable_text_color(c), c), c)
        for c in (f"#{r:02x}{g:02x}{b:02x}" for r in levels for g in levels for b in levels)
    )
    assert worst[0] >= 4.5, worst
    assert readable_text_color("#1f4e79") == "#ffffff"  # the default primary: white
    assert readable_text_color("#e07a1f") == "#000000"  # the default accent: black


def test_primary_as_text__any_brand_colour__reaches_4_5_to_1_on_the_page_and_cards():
    """The colour links, big figures and focus outlines take from the primary colour reads
    at 4.5:1 on white and on the page's grey, whatever the primary; a primary that already
    does is used as it is, and a light one keeps its hue, only darker."""
    levels = range(0, 256, 15)
    worst = min(
        (contrast_ratio(text_on_light(c), bg), c, bg)
        for c in (f"#{r:02x}{g:02x}{b:02x}" for r in levels for g in levels for b in levels)
        for bg in LIGHT_BACKGROUNDS
    )
    assert worst[0] >= 4.5, worst
    assert text_on_light("#1f4e79") == "#1f4e79"  # the default primary: unchanged
    orange = text_on_light("#f7941d")
    r, g, b = (int(orange[i : i + 2], 16) for i in (1, 3, 5))
    assert r > g > b, orange  # still an orange
    assert contrast_ratio(orange, "#ffffff") < 5.5, orange  # darkened no more than needed


STYLE = "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor] }"
FOCUSED = """() => { const e = document.activeElement;
  return [e.textContent.trim(), getComputedStyle(e).outlineColor, !!e.closest('header')] }"""


@pytest.fixture
def plain_http(settings):
    # The live server speaks plain HTTP: secure-only cookies would never come back.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_primary_button__default_brand_colours__text_has_4_5_to_1_contrast(
    tenant, live_server, plain_http
):
    """Every primary action (sign in, book, select this offer, save...) is white 16 px text
    on the default accent #e07a1f: 3.0:1, below WCAG 1.4.3's 4.5:1 for body text. A member
    with low vision struggles to read the platform's own out-of-the-box buttons."""
    base = base_url(tenant.production, live_server)
    with browser_page() as page:
        page.goto(f"{base}/login/")
        button = page.locator("main form button[type=submit]")
        fg, bg = button.evaluate(STYLE)
    ratio = contrast(fg, bg)
    assert ratio >= 4.5, (
        f'<button type="submit">Email me a sign-in link</button> on /login/: text {fg} on '
        f"{bg} is {ratio:.2f}:1 (member.css `button, .button`)"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_branding_admin__accent_unreadable_under_white_text__refused_or_text_made_readable(
    tenant, live_server, plain_http
):
    """Marketing sets the accent to Harbor's own demo colour #c9a227 (gold). The admin
    accepts it with no warning and every button on the member pages becomes white on gold,
    2.4:1. The platform should refuse such a colour or give the buttons a readable text
    colour (dark text on a light accent)."""
    user = staff_user(tenant.institution, "marketing")
    client = staff_client(user, tenant.staging)
    with scopes_disabled():
        branding = Branding.objects.get(environment=tenant.staging)
    response = client.post(
        reverse("admin:institutions_branding_change", args=[branding.pk]),
        {
            "display_name": "Harbor Community Bank",
            "primary_color": "#0f6b5c",
            "accent_color": "#c9a227",
            "font": "system",
            "housing_notice": "lender",
        },
    )
    if response.status_code == 200 and "accent_color" in response.context["adminform"].form.errors:
        return  # refused with a message: fine
    assert response.status_code == 302
    base = base_url(tenant.staging, live_server)
    with browser_page() as page:
        page.goto(f"{base}/login/")
        fg, bg = page.locator("main form button[type=submit]").evaluate(STYLE)
    ratio = contrast(fg, bg)
    assert ratio >= 4.5, (
        f"accent #c9a227 accepted by the branding admin; <button type=submit> on /login/ is "
        f"text {fg} on {bg}: {ratio:.2f}:1 (no contrast check, no fallback text colour)"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_header_controls__keyboard_focus__outline_has_3_to_1_contrast_with_the_header(
    tenant, live_server, plain_http
):
    """On the dashboard, tabbing onto "Sign out" (a control of the header) draws the focus
    outline (homes.css `:focus-visible`) in the accent colour over the primary-coloured
    header: #e07a1f on #1f4e79 is 2.9:1, below WCAG 1.4.11's 3:1 for a focus indicator,
    with the default colours. A keyboard user can hardly see where focus is."""
    member = MemberFactory(environment=tenant.production)
    base = base_url(tenant.production, live_server)
    cookie = session_cookie(member, base)
    outlines = {}
    with browser_page(cookies=[cookie]) as page:
        page.goto(f"{base}/")
        header = page.locator("header.site-header").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        for _ in range(10):  # the skip link, then the header's controls up to "Sign out"
            page.keyboard.press("Tab")
            name, outline, in_header = page.evaluate(FOCUSED)
            if in_header:
                outlines[name] = outline
            if name == "Sign out":
                break
    assert "Sign out" in outlines, outlines
    low = {
        name: f"{outline}: {contrast(outline, header):.2f}:1"
        for name, outline in outlines.items()
        if contrast(outline, header) < 3
    }
    assert not low, f"focus outlines against header.site-header {header}: {low}"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_skip_link__first_tab__shown_on_screen_and_leads_to_main(tenant, live_server, plain_http):
    """The skip link is out of sight until it has keyboard focus; then it shows, and
    following it moves the keyboard past the header."""
    member = MemberFactory(environment=tenant.production)
    base = base_url(tenant.production, live_server)
    cookie = session_cookie(member, base)
    with browser_page(cookies=[cookie]) as page:
        page.goto(f"{base}/")
        link = page.locator("a.skip-link")
        hidden = link.evaluate("e => e.getBoundingClientRect().bottom <= 0")
        page.keyboard.press("Tab")
        name, _, _ = page.evaluate(FOCUSED)
        box = link.bounding_box()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        after = page.evaluate("() => !!document.activeElement.closest('main')")
    assert hidden
    assert name == "Skip to main content"
    assert box["y"] >= 0, box
    assert min(box["width"], box["height"]) > 0, box
    assert after, "the Tab after the skip link should land inside <main>"


def _wordmark_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 60), (31, 78, 121)).save(out, "PNG")  # a 10:1 wordmark logo
    return out.getvalue()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_and_offer__wide_wordmark_logo_at_375px__no_horizontal_scrolling(
    tenant, live_server, plain_http
):
    """An institution uploads a wide wordmark logo (10:1, a common shape for a bank's name).
    On a 375 px phone the header's `img.logo` is 360 px wide (only its height is capped),
    "Sign out" is pushed off screen and every member page scrolls sideways."""
    env = tenant.production
    member = MemberFactory(environment=env)
    _, (product,) = _home(member)
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(logo="logos/wordmark.png")
    base = base_url(env, live_server)
    cookie = session_cookie(member, base)
    png = _wordmark_png()
    overflow = {}
    with browser_page(cookies=[cookie], width=375) as page:
        # Media files are served by the storage in production: answer them here.
        page.route("**/media/**", lambda route: route.fulfill(body=png, content_type="image/png"))
        for path in ("/", f"/offers/{product.pk}/"):
            page.goto(base + path)
            page.wait_for_load_state("load")
            overflow[path] = page.evaluate(
                """() => { const W = document.documentElement.clientWidth;
                   const out = [...document.querySelectorAll('body *')]
                     .filter(e => e.getBoundingClientRect().right > W + 0.5)
                     .map(e => e.outerHTML.slice(0, 80)
                       + ' right=' + Math.round(e.getBoundingClientRect().right));
                   return [document.documentElement.scrollWidth, W, out.slice(0, 3)] }"""
            )
    wide = {path: v for path, v in overflow.items() if v[0] > v[1]}
    assert not wide, f"scrollWidth > 375 px, elements past the right edge: {wide}"


@pytest.mark.parametrize(("primary", "text"), [("#1f4e79", "#ffffff"), ("#f2e6a0", "#000000")])
def test_magic_link_email__button_text__readable_on_the_primary_colour(primary, text):
    """The sign-in button of the email is drawn in the primary colour: its text follows it,
    as on the member pages, instead of white on any colour."""
    from django.template.loader import render_to_string

    html = render_to_string(
        "emails/magic_link.html",
        {"branding": Branding(primary_color=primary, display_name="Harbor"), "url": "/x/"},
    )
    assert f"background:{primary};color:{text};" in html
    assert contrast_ratio(primary, text) >= 4.5


def _inputs(html: str) -> dict[str, str]:
    """The autocomplete attribute of each named input ('' when it has none)."""
    found = {}
    for tag, attrs, _stack in Elements(html).tags:
        if tag == "input" and attrs.get("name") and attrs.get("type") != "hidden":
            found[attrs["name"]] = attrs.get("autocomplete") or ""
    return found


def test_sign_in_and_opt_in__personal_fields__declare_their_autocomplete_purpose(tenant):
    """The sign-in page's email field and the opt-in page's name, street and ZIP code
    fields say what they are for (WCAG 1.3.5): a phone offers the member's own email,
    name and address, and assistive technology can tell what each field asks."""
    env = tenant.production
    home_settings_factory(env, enrollment_mode="opt_in")
    member = MemberFactory(environment=env, enrollment=Member.Enrollment.PENDING)
    PropertyFactory(environment=env, member=member)
    login = _inputs(Client(HTTP_HOST=env.host).get("/login/").content.decode())
    enroll = _inputs(member_client(member).get("/enroll/").content.decode())
    expected = {
        ("/login/", "email"): ("email",),
        ("/enroll/", "full_name"): ("name",),
        ("/enroll/", "street"): ("street-address", "address-line1"),
        ("/enroll/", "postal_code"): ("postal-code",),
    }
    seen = {("/login/", k): v for k, v in login.items()} | {
        ("/enroll/", k): v for k, v in enroll.items()
    }
    wrong = {
        f"{page} {name}": seen.get((page, name), "<missing field>") or "<none>"
        for (page, name), allowed in expected.items()
        if seen.get((page, name)) not in allowed
    }
    assert not wrong, f"autocomplete of personal fields: {wrong}"


#: An orange many credit unions use: the header's text turns black on it (10:1 and more).
ORANGE = "#f7941d"

#: Colour of an element's text, the first opaque background behind it, and whether it is
#: large text (WCAG: 24 px, or 18.66 px bold).
TEXT_ON_BACKGROUND = """e => {
  const s = getComputedStyle(e);
  let node = e, bg = 'rgb(255, 255, 255)';
  while (node) {
    const b = getComputedStyle(node).backgroundColor;
    if (b && b !== 'transparent' && !b.startsWith('rgba(0, 0, 0, 0')) { bg = b; break; }
    node = node.parentElement;
  }
  const px = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
  return [e.textContent.trim().slice(0, 40), s.color, bg, px >= 24 || (bold && px >= 18.66)];
}"""


def _orange_staging(tenant):
    """Marketing sets the staging primary colour to orange through the branding admin; the
    member who previews it there. None when the admin refuses the colour."""
    client = staff_client(staff_user(tenant.institution, "marketing"), tenant.staging)
    with scopes_disabled():
        branding = Branding.objects.get(environment=tenant.staging)
    response = client.post(
        reverse("admin:institutions_branding_change", args=[branding.pk]),
        {
            "display_name": "Cascade Federal Credit Union",
            "primary_color": ORANGE,
            "accent_color": "#1f4e79",
            "font": "system",
            "housing_notice": "lender",
        },
    )
    if response.status_code == 200 and "primary_color" in response.context["adminform"].form.errors:
        return None  # refused with a message: nothing unreadable reaches members
    assert response.status_code == 302, response.status_code
    member = MemberFactory(environment=tenant.staging)
    _, (product,) = _home(member)
    return member, product


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_primary_colour_orange__links_and_figures_on_white__readable(
    tenant, live_server, plain_http
):
    """With an orange primary colour the branding admin accepts (the header adapts with
    black text), every link, the big figures (estimated value, what you could borrow) and
    the "Save for later" button read at 4.5:1 (3:1 for the large figures) on the white
    cards and the page, on the dashboard, the offer page and the tile."""
    found = _orange_staging(tenant)
    if found is None:
        return
    member, product = found
    base = base_url(tenant.staging, live_server)
    seen = []
    with browser_page(cookies=[session_cookie(member, base)], width=375, height=667) as page:
        page.goto(f"{base}/")
        for selector in ("main .big", "main a[href]:not(.button)"):
            seen += page.locator(selector).evaluate_all(f"es => es.map({TEXT_ON_BACKGROUND})")
        page.goto(f"{base}/offers/{product.pk}/")
        for selector in ("main a[href]:not(.button)", "main button.secondary"):
            seen += page.locator(selector).evaluate_all(f"es => es.map({TEXT_ON_BACKGROUND})")
        page.goto(f"{base}/tile/")
        for selector in ("main .big", "main button.link, main a[href]:not(.button)"):
            seen += page.locator(selector).evaluate_all(f"es => es.map({TEXT_ON_BACKGROUND})")
    assert seen
    low = [
        f"{text!r}: {fg} on {bg} {contrast(fg, bg):.2f}:1"
        for text, fg, bg, large in seen
        if contrast(fg, bg) < (3 if large else 4.5)
    ]
    assert not low, f"primary colour {ORANGE} as text on the member pages: {low}"


FOCUSED_IN_PAGE = """() => { const e = document.activeElement; const s = getComputedStyle(e);
  let node = e.parentElement, bg = 'rgb(255, 255, 255)';
  while (node) {
    const b = getComputedStyle(node).backgroundColor;
    if (b && b !== 'transparent' && !b.startsWith('rgba(0, 0, 0, 0')) { bg = b; break; }
    node = node.parentElement;
  }
  return [e.textContent.trim().slice(0, 40), s.outlineStyle, s.outlineColor, bg,
          !!e.closest('main')]; }"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_primary_colour_orange__keyboard_focus_in_the_page__outline_has_3_to_1(
    tenant, live_server, plain_http
):
    """With an orange primary colour the admin accepts, the focus outline of the controls
    in the page body still has 3:1 and more against the page and the cards, so a keyboard
    user sees which link or button has focus."""
    found = _orange_staging(tenant)
    if found is None:
        return
    member, _product = found
    base = base_url(tenant.staging, live_server)
    outlines = {}
    with browser_page(cookies=[session_cookie(member, base)], width=375, height=667) as page:
        page.goto(f"{base}/")
        for _ in range(25):
            page.keyboard.press("Tab")
            name, style, colour, bg, in_main = page.evaluate(FOCUSED_IN_PAGE)
            if in_main and style != "none":
                outlines[name] = (colour, bg)
            if len(outlines) >= 4:
                break
    assert outlines, "no control of the page body took keyboard focus"
    low = {
        name: f"{colour} on {bg}: {contrast(colour, bg):.2f}:1"
        for name, (colour, bg) in outlines.items()
        if contrast(colour, bg) < 3
    }
    assert not low, f"focus outlines with primary colour {ORANGE}: {low}"
