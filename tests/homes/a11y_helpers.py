"""For the accessibility tests: a Chromium page signed in as a member, contrast, markup."""

from __future__ import annotations

import re
from contextlib import contextmanager
from html.parser import HTMLParser
from urllib.parse import urlparse

from django.conf import settings as django_settings
from playwright.sync_api import sync_playwright

from tests.conftest import member_client
from tests.services import require_chromium

ARGS = ["--host-resolver-rules=MAP *.chimney.test 127.0.0.1", "--no-sandbox"]


def base_url(environment, live_server) -> str:
    return f"http://{environment.host}:{urlparse(live_server.url).port}"


def session_cookie(member, base: str) -> dict:
    client = member_client(member)
    return {
        "name": django_settings.SESSION_COOKIE_NAME,
        "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
        "url": base,
    }


@contextmanager
def browser_page(*, cookies=(), width=375, height=800, javascript=True):
    """A page of Debian's Chromium (no database access inside: Playwright runs a loop)."""
    chromium = require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        context = browser.new_context(
            viewport={"width": width, "height": height}, java_script_enabled=javascript
        )
        if cookies:
            context.add_cookies(list(cookies))
        try:
            yield context.new_page()
        finally:
            browser.close()


def _channel(c: float) -> float:
    c = c / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = (_channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def parse_colour(css: str) -> tuple[int, int, int]:
    """'rgb(1, 2, 3)' / 'rgba(...)' / '#rrggbb' as an RGB triple."""
    if css.startswith("#"):
        return tuple(int(css[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    r, g, b = (int(float(x)) for x in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(parse_colour(a)), luminance(parse_colour(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


class Elements(HTMLParser):
    """Start tags in document order, with their attributes and the open-tag stack."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict, tuple[str, ...]]] = []
        self.stack: list[str] = []
        self.feed(html)

    VOID = {"meta", "link", "input", "img", "br", "hr", "source", "area", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), tuple(self.stack)))

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


#: Elements whose right edge is past the viewport, and how wide the document is.
OVERFLOW = """() => {
  const W = document.documentElement.clientWidth;
  const past = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > W + 0.5)
    .map(e => e.tagName.toLowerCase() + ' "' + e.textContent.trim().slice(0, 60) + '" right='
         + Math.round(e.getBoundingClientRect().right));
  return {scrollWidth: document.documentElement.scrollWidth, width: W, past: past.slice(0, 4)};
}"""
