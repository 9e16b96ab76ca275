"""The event beacon in a real browser: consent given without JavaScript, then page events
sent by the beacon script arrive with is_test taken from the member."""

from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import sync_playwright

from flags.models import AnalyticsConsent, Event
from institutions.tenancy import environment_scope
from tests.celery_worker import wait_until
from tests.conftest import member_client
from tests.factories import MemberFactory
from tests.services import require_chromium


def _browser_cookie(member, base: str) -> dict:
    client = member_client(member)  # a signed-in session, as after a magic link
    return {
        "name": django_settings.SESSION_COOKIE_NAME,
        "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
        "url": base,
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser__consent_then_beacon__page_events_arrive_with_is_test_from_the_member(
    tenant, live_server, settings
):
    chromium = require_chromium()
    # The live server speaks plain HTTP: secure-only cookies would never come back.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    port = urlparse(live_server.url).port
    base = f"http://{env.host}:{port}"
    cookie = _browser_cookie(tester, base)
    # (No database access inside the Playwright block: it runs an event loop.)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--host-resolver-rules=MAP *.chimney.test 127.0.0.1", "--no-sandbox"],
        )
        # Without JavaScript the pages and the consent control work as plain HTML forms.
        plain = browser.new_context(java_script_enabled=False)
        plain.add_cookies([cookie])
        page = plain.new_page()
        page.goto(f"{base}/notifications/preferences/")
        assert page.locator("script[src*='flags/beacon.js']").count() == 0
        page.check("#analytics input[value=yes]")
        page.click("#analytics button[type=submit]")
        page.wait_for_selector("text=Saved. Thank you.")
        assert page.locator("script[src*='flags/beacon.js']").count() == 1
        plain.close()

        # With JavaScript the beacon queues page events and sends them as the page is left.
        scripted = browser.new_context()
        scripted.add_cookies([cookie])
        page = scripted.new_page()
        page.goto(f"{base}/privacy/analytics/")
        page.wait_for_function("typeof window.chimneyTrack === 'function'")
        page.evaluate("window.chimneyTrack('consent_page_read', {is_test: false})")
        page.goto(f"{base}/notifications/preferences/")  # pagehide: the batch leaves
        browser.close()
    with environment_scope(env):
        assert AnalyticsConsent.objects.get(member=tester).granted is True

    def arrived():
        with environment_scope(env):
            return list(Event.objects.filter(source="web").order_by("id"))

    events = wait_until(lambda: len(arrived()) >= 2 and arrived(), timeout=20)
    names = [(e.name, e.properties) for e in events[:2]]
    assert names == [
        ("page_viewed", {"path": "/privacy/analytics/"}),
        ("consent_page_read", {"is_test": False}),
    ]
    # is_test comes from the member, whatever the page claims.
    assert {(e.member_id, e.is_test) for e in events} == {(tester.pk, True)}
