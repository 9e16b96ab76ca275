"""What a member's email looks like and where its links lead."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.test import Client

from institutions.models import Branding
from institutions.tenancy import environment_scope
from notifications.services.campaigns import welcome_series_enqueue
from tests.notifications.factories import template_factory
from tests.notifications.helpers import members, run_campaign

pytestmark = pytest.mark.django_db

BODY_COLOR = "color:#1d2330"


def html_of(message) -> str:
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    return html


def local_path(url: str, environment) -> str:
    assert url.startswith(environment.base_url), url
    return url[len(environment.base_url) :]


def test_click_redirect__link_with_an_escaped_ampersand__leads_where_the_template_says(
    tenant, django_capture_on_commit_callbacks
):
    """A link written as valid HTML (& as &amp; in an attribute) takes the member to the
    address the browser would open, not to one with a literal "&amp;" in its query."""
    env = tenant.production
    template_factory(
        env,
        "home_value",
        html_body='<p><a href="https://bank.example/rates?utm_source=email&amp;utm_medium=update">'
        "Today's rates</a></p>",
    )
    (member,) = members(env, 1)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (message,) = mail.outbox
    tracked = re.search(r'href="([^"]+/notifications/c/[^"]+)">Today', html_of(message))[1]

    response = Client(HTTP_HOST=env.host).get(local_path(tracked, env))
    assert response.status_code == 302
    assert response["Location"] == "https://bank.example/rates?utm_source=email&utm_medium=update"


class _BodyStyle(HTMLParser):
    def __init__(self):
        super().__init__()
        self.style = None

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.style = dict(attrs).get("style")


@pytest.mark.parametrize("font", sorted(Branding.FONT_STACKS))
def test_email_layout__brand_font__keeps_the_body_style_attribute_whole(
    tenant, font, django_capture_on_commit_callbacks
):
    """The branded font stacks name fonts in double quotes ("Segoe UI"): inside the body's
    double-quoted style attribute they must not end the attribute early."""
    env = tenant.production
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(font=font)
    (member,) = members(env, 1)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (message,) = mail.outbox
    parser = _BodyStyle()
    parser.feed(html_of(message))
    style = parser.style or ""
    assert f"font-family:{Branding.FONT_STACKS[font]};" in style, style  # the whole stack
    assert BODY_COLOR in style, style  # and what follows it


def test_welcome_day_5__my_preferences_button__opens_the_preferences_without_signing_in(
    tenant, django_capture_on_commit_callbacks
):
    """The email that asks the member to choose what we send them opens the preferences
    from the email, as the footer's link does, not the sign-in page."""
    env = tenant.production
    (member,) = members(env, 1)
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        welcome_series_enqueue(
            environment=env, members=[member], enrolled_at=datetime.now(UTC) - timedelta(days=6)
        )
    (message,) = [m for m in mail.outbox if m.subject == "Choose what we send you"]
    button = re.search(r'href="([^"]+)">My preferences<', html_of(message))[1]
    client = Client(HTTP_HOST=env.host)  # the email is read where the member is not signed in
    redirect = client.get(local_path(button, env))
    assert redirect.status_code == 302
    page = client.get(local_path(redirect["Location"], env))
    assert page.status_code == 200, page.get("Location")
    assert b"What we send you" in page.content
