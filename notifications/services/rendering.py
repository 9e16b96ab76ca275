"""Render a delivery's template with its member and context, inside the branded layout."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from django.template import Context, Template, TemplateSyntaxError
from django.template.loader import get_template
from django.utils.safestring import mark_safe

from notifications.defaults import DEFAULT_TEMPLATES
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


class CompiledTemplate:
    def __init__(self, source: dict):
        self.source = source
        self.category = source["category"]
        try:
            self.parts = {f: Template(source.get(f) or "") for f in _FIELDS}
        except TemplateSyntaxError as exc:
            raise RenderError(f"template {source.get('key', '?')} does not compile: {exc}") from exc

    def render(self, field: str, context: dict, *, autoescape: bool) -> str:
        return self.parts[field].render(Context(context, autoescape=autoescape))


class TemplateCache:
    """Compiled templates of one environment for one batch (one query per key)."""

    def __init__(self, environment):
        self.environment = environment
        self._cache: dict[str, CompiledTemplate | RenderError] = {}

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


@functools.cache
def _layouts():
    return (
        get_template("notifications/email/layout.txt"),
        get_template("notifications/email/layout.html"),
    )


def base_context(environment, member, branding, delivery_context: dict) -> dict:
    base = environment.base_url
    institution = environment.institution
    offer_path = (delivery_context.get("home") or {}).get("top_offer_path") or "/"
    return {
        **delivery_context,
        "member": {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "full_name": member.full_name,
            "email": member.email,
        },
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
    *, environment, delivery, member, branding, templates: TemplateCache, track: bool = True
) -> Rendered:
    """Subject, text, HTML (branded, tracked) and push fields for one delivery."""
    compiled = templates.get(delivery.template_key)
    context = base_context(environment, member, branding, delivery.context)
    base = environment.base_url
    unsubscribe_url = ""
    if delivery.category != "account":
        token = unsubscribe_token(
            environment_id=environment.pk, member_id=member.pk, category=delivery.category
        )
        unsubscribe_url = f"{base}/notifications/unsubscribe/{token}/"
    manage = unsubscribe_token(environment_id=environment.pk, member_id=member.pk, category="*")
    preferences_url = f"{base}/notifications/manage/{manage}/"
    try:
        subject = " ".join(compiled.render("subject", context, autoescape=False).split())
        text = compiled.render("text_body", context, autoescape=False)
        body_html = compiled.render("html_body", context, autoescape=True)
        push_title = compiled.render("push_title", context, autoescape=False).strip()
        push_body = compiled.render("push_body", context, autoescape=False).strip()
        push_link = compiled.render("push_link", context, autoescape=False).strip() or "/"
    except Exception as exc:  # a filter or tag failing at render time: the template's fault
        raise RenderError(f"template {delivery.template_key} does not render: {exc}") from exc
    if not subject:
        raise RenderError(f"template {delivery.template_key} renders an empty subject")
    if track and delivery.pk:

        def tracked(match) -> str:
            token = track_token(
                environment_id=environment.pk, delivery_id=delivery.pk, url=match[1]
            )
            return f'href="{base}/notifications/c/{token}/"'

        body_html = _HREF.sub(tracked, body_html)
    pixel_url = ""
    if track and delivery.pk:
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
    text_layout, html_layout = _layouts()
    return Rendered(
        subject=subject,
        text=text_layout.render(layout),
        html=html_layout.render(layout),
        push_title=push_title or subject,
        push_body=push_body,
        push_url=push_url,
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
    )
