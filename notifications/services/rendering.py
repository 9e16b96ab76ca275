"""Render a delivery's template with its member and context, inside the branded layout."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html import escape as html_escape
from html import unescape as html_unescape

from django.template import TemplateSyntaxError
from django.template.loader import get_template
from django.utils.safestring import mark_safe

from notifications.defaults import DEFAULT_TEMPLATES
from notifications.fast_templates import FastTemplate
from notifications.models import MessageTemplate
from notifications.tokens import track_token, unsubscribe_token


class RenderError(Exception):
    """The template does not render: a permanent failure of this delivery (fix, then retry)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    push_title: str
    push_body: str
    push_url: str
    unsubscribe_url: str  # empty for account messages (they cannot be unsubscribed)
    preferences_url: str


_FIELDS = ("subject", "text_body", "html_body", "push_title", "push_body", "push_link")
_HREF = re.compile(r'href="(https?://[^"]+)"')


_URL_NOISE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def _link(attribute: str) -> str:
    """The address a browser opens for an href's text: entities decoded, tabs and line
    breaks removed, leading and trailing controls and spaces trimmed (WHATWG URL)."""
    return _URL_NOISE.sub("", html_unescape(attribute)).strip(_C0_AND_SPACE)


class CompiledTemplate:
    def __init__(self, source: dict):
        self.source = source
        self.category = source["category"]
        try:
            self.parts = {f: _compiled(source.get(f) or "") for f in _FIELDS}
        except TemplateSyntaxError as exc:
            raise RenderError(f"template {source.get('key', '?')} does not compile: {exc}") from exc

    def render(self, field: str, context: dict, *, autoescape: bool) -> str:
        return self.parts[field].render(context, autoescape=autoescape)


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> FastTemplate:
    """Compiled once per process: every batch of a campaign renders the same sources."""
    return FastTemplate(source)


class TemplateCache:
    """Compiled templates of one environment for one batch (one query per key), and the
    branded layouts rendered once per batch with slots for what differs per message."""

    def __init__(self, environment):
        self.environment = environment
        self._cache: dict[str, CompiledTemplate | RenderError] = {}
        self._layouts: dict[tuple, tuple[list[str], list[str]]] = {}

    def layout(self, layout: dict) -> tuple[list[str], list[str]]:
        """(text parts, HTML parts): literal text with a slot name at every odd index.

        The layout's conditions depend only on whether there is an unsubscribe link, a
        preferences link and a pixel, so it is rendered once per variant with sentinels in
        the slots; each message is then a join, its values escaped as the template would
        escape them.
        """
        key = (
            bool(layout["unsubscribe_url"]),
            bool(layout["pixel_url"]),
            bool(layout["preferences_url"]),
        )
        if key not in self._layouts:
            probe = {**layout, **{slot: _SENTINEL.format(slot) for slot in _SLOTS}}
            if not key[0]:
                probe["unsubscribe_url"] = ""
            if not key[1]:
                probe["pixel_url"] = ""
            if not key[2]:
                probe["preferences_url"] = ""
            text_layout, html_layout = _layouts()
            self._layouts[key] = (
                _SENTINEL_RE.split(text_layout.render(probe)),
                _SENTINEL_RE.split(html_layout.render(probe)),
            )
        return self._layouts[key]

    def source(self, key: str) -> dict:
        row = MessageTemplate.objects.filter(environment=self.environment, key=key).first()
        if row is not None:
            return {"key": key, "category": row.category, **{f: getattr(row, f) for f in _FIELDS}}
        if key in DEFAULT_TEMPLATES:
            return {"key": key, **DEFAULT_TEMPLATES[key]}
        raise RenderError(f"no template {key!r} in this environment")

    def get(self, key: str) -> CompiledTemplate:
        if key not in self._cache:
            try:
                self._cache[key] = CompiledTemplate(self.source(key))
            except RenderError as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, RenderError):
            raise value
        return value


_SLOTS = ("subject", "body", "text", "unsubscribe_url", "preferences_url", "pixel_url")
_SENTINEL = "\x00slot:{}\x00"
_SENTINEL_RE = re.compile("\x00slot:([a-z_]+)\x00")


def _fill(parts: list[str], values: dict[str, str]) -> str:
    out = parts[:]
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return "".join(out)


@functools.cache
def _layouts():
    return (
        get_template("notifications/email/layout.txt"),
        get_template("notifications/email/layout.html"),
    )


def base_context(environment, member, branding, delivery_context: dict, recipient=None) -> dict:
    """The template context: the delivery's own, the member (or, for someone who is not a
    member, the recipient), the institution and the usual links."""
    base = environment.base_url
    institution = environment.institution
    offer_path = (delivery_context.get("home") or {}).get("top_offer_path") or "/"
    if member is not None:
        person = {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "full_name": member.full_name,
            "email": member.email,
        }
        recipient = recipient or {"name": member.full_name, "email": member.email}
    else:
        person = {"first_name": "", "last_name": "", "full_name": "", "email": ""}
    return {
        **delivery_context,
        "member": person,
        "recipient": recipient or {"name": "", "email": ""},
        "institution": {
            "name": branding.display_name if branding else institution.display_name,
            "legal_name": institution.legal_name,
            "postal_address": institution.postal_address,
            "nmls_id": institution.nmls_id,
        },
        "links": {
            "dashboard": f"{base}/",
            "offer": f"{base}{offer_path}",
            "preferences": f"{base}/notifications/preferences/",
        },
    }


def render_delivery(
    *,
    environment,
    delivery,
    member,
    branding,
    templates: TemplateCache,
    track: bool = True,
    channel: str | None = None,
) -> Rendered:
    """Subject, text, HTML (branded, tracked) and push fields for one delivery.

    With a channel, only what that channel shows is rendered (the rest is empty)."""
    compiled = templates.get(delivery.template_key)
    recipient = None
    if member is None:  # someone who is not a member: no preferences to manage
        recipient = {"name": delivery.recipient_name, "email": delivery.recipient_email}
    context = base_context(environment, member, branding, delivery.context, recipient)
    base = environment.base_url
    unsubscribe_url = preferences_url = ""
    if member is not None:
        if delivery.category != "account":
            token = unsubscribe_token(
                environment_id=environment.pk, member_id=member.pk, category=delivery.category
            )
            unsubscribe_url = f"{base}/notifications/unsubscribe/{token}/"
        manage = unsubscribe_token(environment_id=environment.pk, member_id=member.pk, category="*")
        preferences_url = f"{base}/notifications/manage/{manage}/"
        # Opened from the email, where the member is not signed in: as the footer's link.
        context["links"]["preferences"] = preferences_url
    email = channel in (None, "email")
    push = channel in (None, "push")
    text = body_html = push_title = push_body = ""
    push_link = "/"
    try:
        subject = " ".join(compiled.render("subject", context, autoescape=False).split())
        if email:
            text = compiled.render("text_body", context, autoescape=False)
            body_html = compiled.render("html_body", context, autoescape=True)
        if push:
            push_title = compiled.render("push_title", context, autoescape=False).strip()
            push_body = compiled.render("push_body", context, autoescape=False).strip()
            push_link = compiled.render("push_link", context, autoescape=False).strip() or "/"
    except Exception as exc:  # a filter or tag failing at render time: the template's fault
        raise RenderError(f"template {delivery.template_key} does not render: {exc}") from exc
    if not subject:
        raise RenderError(f"template {delivery.template_key} renders an empty subject")
    if track and delivery.pk and email:

        def tracked(match) -> str:
            # The attribute's text is HTML (& written &amp;): the redirect goes where the
            # browser would have gone, so the address it parses is the one signed.
            token = track_token(
                environment_id=environment.pk, delivery_id=delivery.pk, url=_link(match[1])
            )
            return f'href="{base}/notifications/c/{token}/"'

        body_html = _HREF.sub(tracked, body_html)
    pixel_url = ""
    if track and delivery.pk and email:
        token = track_token(environment_id=environment.pk, delivery_id=delivery.pk)
        pixel_url = f"{base}/notifications/o/{token}.gif"
    layout = {
        "branding": branding,
        "institution": context["institution"],
        "environment": environment,
        "subject": subject,
        "body": mark_safe(body_html),  # noqa: S308  (rendered with autoescape above)
        "text": text,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "pixel_url": pixel_url,
    }
    push_url = push_link if push_link.startswith("http") else f"{base}{push_link}"
    text = html = ""
    if email:
        text_parts, html_parts = templates.layout(layout)
        text = _fill(text_parts, {k: str(layout[k]) for k in _SLOTS})
        html = _fill(
            html_parts,
            # html.escape is what django.utils.html.escape does, without its lazy wrapper.
            {k: layout[k] if k == "body" else html_escape(str(layout[k])) for k in _SLOTS},
        )
    return Rendered(
        subject=subject,
        text=text,
        html=html,
        push_title=push_title or subject,
        push_body=push_body,
        push_url=push_url,
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
    )
