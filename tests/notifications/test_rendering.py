"""The fast paths of sending are the same message as the slow ones: the layout rendered once
per batch with slots, and the MIME text written directly."""

from __future__ import annotations

import time
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from django.core import signing
from django.core.mail import EmailMultiAlternatives

from institutions.models import Branding
from institutions.tenancy import environment_scope
from notifications import tokens
from notifications.channels import email as email_channel
from notifications.services import rendering
from tests.notifications.factories import DeliveryFactory, template_factory
from tests.notifications.fake_homes import home_summaries
from tests.notifications.helpers import members

pytestmark = pytest.mark.django_db


def direct_layout(self, layout):
    """The slow way: the whole layout rendered for every message."""
    text_layout, html_layout = rendering._layouts()
    return [text_layout.render(layout)], [html_layout.render(layout)]


@pytest.mark.parametrize("category", ["offers", "account"])
def test_layout_rendered_once_with_slots__equals_rendering_it_per_message(
    tenant, monkeypatch, category
):
    from notifications.services.campaigns import home_context

    env = tenant.production
    # Links are signed with a timestamp: both renderings must happen in the same second.
    frozen = time.time()
    monkeypatch.setattr(time, "time", lambda: frozen)
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(footer_text="Tom & Jerry <b>\nline 2")
    (member,) = members(env, 1, first_name="Zoë <&>")
    template_factory(
        env,
        "tricky",
        category=category,
        subject='{{ member.first_name }} & "co" {{ home.value_display }}',
        html_body='<p>{{ member.first_name }}</p><a href="https://x.test/?a=1&b=2">go</a>',
        text_body="Hi {{ member.first_name }} & you",
    )
    summary = home_summaries(environment=env, member_ids=[member.pk])[member.pk]
    delivery = DeliveryFactory(
        environment=env,
        member=member,
        template_key="tricky",
        category=category,
        context={"home": home_context(env, summary)},
    )
    with environment_scope(env):
        branding = Branding.objects.get(environment=env)

        def render():
            return rendering.render_delivery(
                environment=env,
                delivery=delivery,
                member=member,
                branding=branding,
                templates=rendering.TemplateCache(env),
                channel="email",
            )

        fast = render()
        monkeypatch.setattr(rendering.TemplateCache, "layout", direct_layout)
        slow = render()
    assert fast.html == slow.html
    assert fast.text == slow.text
    assert "Zoë &lt;&amp;&gt;" in fast.html
    assert "Tom &amp; Jerry &lt;b&gt;<br>line 2" in fast.html
    assert ("Unsubscribe" in fast.text) is (category != "account")


def test_raw_message__non_ascii_and_long_lines__parse_back_to_the_same_content(settings):
    html = "<p>" + "x" * 3000 + "</p>\n<p>.dot at a line start, € and =</p>"
    text = "Grüße,\n.a line starting with a dot\ntrailing space \nend"
    subject = "Ihr Zuhause ist etwa 412.000 € wert — " + "lang " * 40
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email='"Crédit Coopératif" <news@credit.example>',
        to=["jose@example.test"],
        headers={"Message-ID": "<delivery.1.2@h.test>", "X-Chimney-Delivery": "1"},
    )
    message.attach_alternative(html, "text/html")
    raw = email_channel.raw_message(message)
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Crédit Coopératif"
    assert parsed["To"] == "jose@example.test"
    assert parsed["Message-ID"] == "<delivery.1.2@h.test>"
    for subtype, original in (("plain", text), ("html", html)):
        content = parsed.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert content.rstrip("\n") == original


def test_raw_message__line_break_in_a_header__refused():
    message = EmailMultiAlternatives(
        subject="ok", body="b", from_email="a@b.test", to=["c@d.test"], headers={"X-A": "1\nBcc: x"}
    )
    message.attach_alternative("<p>b</p>", "text/html")
    with pytest.raises(ValueError, match="line break"):
        email_channel.raw_message(message)


def test_raw_message__with_attachments__left_to_the_email_package():
    message = EmailMultiAlternatives(subject="s", body="b", from_email="a@b.test", to=["c@d.test"])
    message.attach_alternative("<p>b</p>", "text/html")
    message.attach("invite.ics", "BEGIN:VCALENDAR", "text/calendar")
    assert email_channel.raw_message(message) is None


def test_raw_message__ascii_short_lines__sent_as_they_are_and_parse_back(settings):
    html = '<p>Hello <a href="https://x.test/?a=1&b=2">there</a></p>\n<p>.dot = equals</p>'
    text = "Hello,\n.a line starting with a dot\ntrailing space \nend"
    message = EmailMultiAlternatives(
        subject="Your home", body=text, from_email="news@credit.example", to=["a@b.test"]
    )
    message.attach_alternative(html, "text/html")
    raw = email_channel.raw_message(message)
    assert raw.count(b"Content-Transfer-Encoding: 7bit") == 2
    assert html.encode() in raw  # no encoding at all
    parsed = message_from_bytes(raw, policy=policy.default)
    for subtype, original in (("plain", text), ("html", html)):
        assert parsed.get_body((subtype,)).get_content().rstrip("\n") == original


@pytest.mark.parametrize(
    ("make", "salt", "payload"),
    [
        (
            lambda: tokens.unsubscribe_token(environment_id=3, member_id=9, category="offers"),
            tokens.UNSUBSCRIBE_SALT,
            {"e": 3, "m": 9, "c": "offers"},
        ),
        (
            lambda: tokens.track_token(environment_id=3, delivery_id=7),
            tokens.TRACK_SALT,
            {"e": 3, "d": 7},
        ),
        (
            lambda: tokens.track_token(
                environment_id=3, delivery_id=7, url='https://x.test/a?b="c"&d=é' + "/x" * 80
            ),
            tokens.TRACK_SALT,
            {"e": 3, "d": 7, "u": 'https://x.test/a?b="c"&d=é' + "/x" * 80},
        ),
    ],
)
def test_tokens__as_django_signing_makes_them__and_read_back(monkeypatch, make, salt, payload):
    frozen = time.time()
    monkeypatch.setattr(time, "time", lambda: frozen)
    token = make()
    assert token == signing.dumps(payload, salt=salt, compress=True)
    assert signing.loads(token, salt=salt) == payload


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(Decimal("-50000"), "\u2212$50,000"), (Decimal("1234.6"), "$1,235"), (None, "")],
)
def test_home_context__money__minus_sign_before_the_dollar_sign(amount, shown):
    """Negative equity shows the minus sign before the dollar sign, as on the pages."""
    from notifications.services.campaigns import _money

    assert _money(amount) == shown
