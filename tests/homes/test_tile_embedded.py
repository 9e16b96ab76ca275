"""The tile as digital banking embeds it: in an iframe on the bank's own (other) site, where
the browser keeps no cookie of ours, so the tile is opened by launch token."""

from urllib.parse import urlencode, urlparse

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import sync_playwright

from homes.services import launch_link_build
from tests.factories import MemberFactory
from tests.homes.test_member_pages import _home
from tests.services import require_chromium

BANKING = "http://banking.example.org"
ARGS = [
    "--host-resolver-rules=MAP *.chimney.test 127.0.0.1",
    "--no-sandbox",
    # The bank page is "public" and the test server local: let the one frame the other
    # (Chromium's local-network checks), and keep plain HTTP (no automatic upgrade).
    "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,"
    "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_tile__framed_by_the_bank_with_a_launch_token__shows_figures_and_signs_in_at_the_top(
    tenant, live_server, settings
):
    chromium = require_chromium()
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False  # plain HTTP here
    institution = tenant.institution
    institution.digital_banking_origins = [BANKING]  # saved as is: the test bank is http
    institution.save()
    member = MemberFactory(environment=tenant.production, external_id="M-1")
    _home(member)  # $300,000, one $200,000 lien, one HELOC: $40,000 to borrow
    base = f"http://{tenant.production.host}:{urlparse(live_server.url).port}"
    token = launch_link_build(environment=tenant.production, external_id="M-1")
    tile_url = f"{base}/tile/?{urlencode({'token': token})}"
    bank_page = f'<!doctype html><title>Bank</title><iframe id="t" src="{tile_url}"></iframe>'
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_context().new_page()
        page.route(
            f"{BANKING}/",
            lambda route: route.fulfill(body=bank_page, content_type="text/html"),
        )
        page.goto(f"{BANKING}/")
        frame = page.frame_locator("#t")
        frame.locator("text=Check my home value").wait_for()
        framed = frame.locator("main").inner_text()
        cookies_while_framed = page.context.cookies(base)
        # The button opens the member's own sign-in link at the top level.
        with page.expect_navigation(url=f"{base}/"):
            frame.locator("text=Check my home value").click()
        page.wait_for_selector("#value-h")
        dashboard = page.inner_text("main")
        cookie_names = [c["name"] for c in page.context.cookies(base)]
        # Signed in at the top level, the tile opened there shows the session's member.
        page.goto(f"{base}/tile/")
        top_level_tile = page.inner_text("main")
        browser.close()
    assert "$300,000" in framed, framed
    assert "$40,000" in framed, framed
    assert not [c for c in cookies_while_framed if c["name"] == django_settings.SESSION_COOKIE_NAME]
    assert "$300,000" in dashboard, dashboard
    assert django_settings.SESSION_COOKIE_NAME in cookie_names
    assert "$300,000" in top_level_tile, top_level_tile
