"""Scenario 1 in a real browser: magic link, dashboard, what-if slider, select a HELOC."""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core import mail
from playwright.sync_api import sync_playwright

from homes.models import MemberOffer
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.homes.test_member_pages import _home
from tests.services import require_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser__magic_link_dashboard_slider_select_offer(tenant, live_server, settings):
    chromium = require_chromium()
    # The live server speaks plain HTTP: secure-only cookies would never come back.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    _, (product,) = _home(member, valuations=6)
    port = urlparse(live_server.url).port
    base = f"http://{tenant.production.host}:{port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--host-resolver-rules=MAP *.chimney.test 127.0.0.1", "--no-sandbox"],
        )
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{base}/login/")
        page.fill("input[name=email]", "ada@example.test")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your email")
        (message,) = mail.outbox
        path = urlparse(re.search(r"https?://\S+/login/\S+/", message.body).group(0)).path
        page.goto(base + path)
        page.click("button[type=submit]")
        page.wait_for_selector("#value-h")
        # The slider's script is deferred: it listens once the page has loaded (under load
        # the element can be there before the script has run).
        page.wait_for_load_state("load")
        assert "$300,000" in page.inner_text("section.value")
        assert page.locator("svg[role=img] circle").count() == 6
        assert page.inner_text("#whatif-power") == "$40,000"
        page.fill("#whatif-value", "350000")  # a range input: sets the value and fires input
        assert page.inner_text("#whatif-power") == "$80,000"
        assert page.inner_text("#whatif-shown") == "$350,000"
        page.screenshot(path=str(SCREENSHOTS / "homes-dashboard.png"), full_page=True)
        page.click(f"a[href='/offers/{product.pk}/']")
        page.wait_for_selector("#disc-h")
        page.click("#select-offer")
        page.wait_for_selector("text=A loan officer will contact you")
        page.screenshot(path=str(SCREENSHOTS / "homes-offer-selected.png"), full_page=True)
        browser.close()
    with environment_scope(tenant.production):
        assert MemberOffer.objects.get(member=member, product=product).selected_at is not None
