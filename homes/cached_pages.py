"""Whole member pages kept rendered, under the version of everything they show.

The dashboard's card (value, chart, equity, borrowing, offers) is cached under
`Dashboard.card_version`, yet rendering the rest of the page (the institution's chrome
around the card) still cost about a third of a view. A page whose content has such a
version is kept whole instead (`render_page`), under a key that names:

- the template and the caller's version of the page's own content;
- every column of the rows the member-page chrome shows: the environment, its institution
  and branding, and the member (a change of any of them gives a new key);
- what other apps' template tags add to member pages, as each app declares it
  (`vary_on`; flags declares the member's analytics consent, which decides the beacon);
- the templates and static files deployed (`render_version`), so a deploy never serves
  the markup of the one before.

A key never has two different pages, so nothing is invalidated: a change makes the next
request use another key, and the unused pages expire. Only the CSRF token differs between
two answers of one key: the page is kept with a marker in its place and every answer
carries a token of its own (`csrf_token`). A request with messages to show or made on a
staff visit (whose banner names the member) is rendered as usual.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.messages import get_messages
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.cache import caches
from django.db.models import FileField
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from homes.middleware import VISITED_BY_SESSION_KEY
from institutions.selectors import environment_branding

# Autoescaping turns "<" into "&lt;", so no member's or staff's text can turn into it.
CSRF_MARKER = mark_safe("<chimney-csrf-token>")
_varies: list[Callable[[HttpRequest], object]] = []


def vary_on(variant: Callable[[HttpRequest], object]) -> Callable[[HttpRequest], object]:
    """Declare something a member page shows besides its content and the chrome's rows
    (called with the request; its value becomes part of every cached page's key)."""
    if variant not in _varies:
        _varies.append(variant)
    return variant


@functools.cache
def _columns(model) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The attribute names of a model's columns: (file columns, the others)."""
    fields = model._meta.concrete_fields
    files = tuple(f.attname for f in fields if isinstance(f, FileField))
    return files, tuple(f.attname for f in fields if f.attname not in files)


def row_version(obj) -> str:
    """Every column of a model instance, as text ("-" for None).

    Values are read from the instance's __dict__ (a column deferred by only() or defer()
    is read as usual): a file column's descriptor would build a FieldFile on every read,
    and the key is made on every kept page's request. A file column counts by its name,
    stored as text until the descriptor first replaces it with a FieldFile."""
    if obj is None:
        return "-"
    values = obj.__dict__
    files, others = _columns(type(obj))
    row = [values[name] if name in values else getattr(obj, name) for name in others]
    for name in files:
        value = values[name] if name in values else getattr(obj, name)
        row.append(getattr(value, "name", value))
    return repr(tuple(row))


@functools.cache
def render_version() -> str:
    """Digest of the project's templates and of the static files' manifest (this process)."""
    digest = hashlib.sha256()
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(directory).rglob("*.html")):
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(path.read_bytes())
    digest.update(str(getattr(staticfiles_storage, "manifest_hash", "")).encode())
    return digest.hexdigest()[:16]


def _mask(secret: str) -> str:
    """The CSRF secret under a new random mask: Django's token format (mask, then each
    character of the secret shifted by the mask's, in CSRF_ALLOWED_CHARS), with the mask
    drawn from one read of the system's random source instead of one read per character
    (Django's get_random_string): some thirty system calls fewer on every kept page."""
    chars, length = CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    # Bytes below 248 (4 x 62) map evenly onto the 62 characters; the rest are skipped.
    mask: list[int] = []
    while len(mask) < length:
        mask += [byte % len(chars) for byte in secrets.token_bytes(2 * length) if byte < 248]
    mask = mask[:length]
    cipher = (chars[(chars.index(c) + m) % len(chars)] for c, m in zip(secret, mask, strict=True))
    return "".join(chars[m] for m in mask) + "".join(cipher)


def csrf_token(request) -> str:
    """A CSRF token for a kept page's forms: freshly masked on every answer (the defence
    against BREACH that get_token() gives), without sending again the cookie the browser
    sent: get_token() renews the cookie's year on every answer, and a kept page is most
    answers. A browser without the cookie (or with one to replace) gets get_token()'s,
    cookie included."""
    secret = request.META.get("CSRF_COOKIE")
    if (
        not secret
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or len(secret) != CSRF_SECRET_LENGTH
    ):
        return get_token(request)
    return _mask(secret)


def _cacheable(request) -> bool:
    return not request.session.get(VISITED_BY_SESSION_KEY) and not len(get_messages(request))


def _key(request, template_name: str, version: str) -> str:
    environment = request.environment
    parts = [
        template_name,
        version,
        render_version(),
        row_version(environment),
        row_version(environment.institution),
        row_version(environment_branding(environment)),
        row_version(request.member),
        *(repr(variant(request)) for variant in _varies),
    ]
    return "homes:page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def render_page(
    request, template_name: str, context: dict, *, version: str, seconds: int
) -> HttpResponse:
    """The rendered member page, from the cache when one of the same key was rendered.

    `version` names everything the page's own content shows.
    """
    if not _cacheable(request):
        return render(request, template_name, context)
    pages = caches["fragments"]
    key = _key(request, template_name, version)
    page = pages.get(key)
    if page is None:
        page = render_to_string(template_name, {**context, "csrf_token": CSRF_MARKER}, request)
        pages.set(key, page, seconds)
    if CSRF_MARKER in page:
        page = page.replace(CSRF_MARKER, csrf_token(request))
    return HttpResponse(page)
