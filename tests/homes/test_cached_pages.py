"""The member dashboard kept whole (homes.cached_pages): served again without rendering,
with the request's own CSRF token, and never once anything it shows has changed."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from homes import cached_pages
from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY, VISITED_BY_SESSION_KEY
from homes.models import Member, Property
from institutions.models import Branding
from institutions.tenancy import environment_scope
from tests.homes.test_member_pages import _home

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _client(member, **session) -> Client:
    """A browser signed in as the member that, like a browser, enforces CSRF checks."""
    client = Client(HTTP_HOST=member.environment.host, enforce_csrf_checks=True)
    s = client.session
    s[MEMBER_SESSION_KEY] = member.pk
    s[MEMBER_ENV_SESSION_KEY] = member.environment_id
    s.update(session)
    s.save()
    return client


def _view(client) -> tuple[str, bool]:
    """The dashboard's HTML and whether it was rendered for this request."""
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode(), bool(response.templates)


def test_dashboard_page__second_view__served_without_rendering_with_its_own_token(member):
    _home(member)
    client = _client(member)
    first, rendered = _view(client)
    assert rendered
    second, rendered_again = _view(client)
    assert not rendered_again
    assert cached_pages.CSRF_MARKER not in second
    assert TOKEN.sub("", second) == TOKEN.sub("", first)
    # Each answer carries a token of its own that the CSRF check accepts.
    token = TOKEN.search(second).group(1)
    assert token != TOKEN.search(first).group(1)
    assert client.post("/logout/", {"csrfmiddlewaretoken": "x" * 64}).status_code == 403
    signed_out = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert signed_out.status_code == 200
    assert MEMBER_SESSION_KEY not in client.session


def test_dashboard_page__what_it_shows_changes__next_view_shows_the_change(
    member, django_capture_on_commit_callbacks
):
    prop, _ = _home(member)
    client = _client(member)
    _view(client)
    env = member.environment
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        branding = Branding.objects.get(environment=env)
        branding.display_name = "Puget Sound Credit Union"
        branding.save()  # its cached copy is dropped on commit
    html, rendered = _view(client)
    assert rendered
    assert "Puget Sound Credit Union" in html

    with environment_scope(env):
        Member.objects.filter(pk=member.pk).update(first_name="Zelda")
    html, rendered = _view(client)
    assert rendered
    assert "Your home, Zelda" in html

    with environment_scope(env):
        Property.objects.filter(pk=prop.pk).update(street="77 Elm Street")
    html, rendered = _view(client)
    assert rendered
    assert "77 Elm Street" in html
    assert not _view(client)[1]  # and kept again


def test_dashboard_page__analytics_answer__beacon_follows_it(member):
    _home(member)
    client = _client(member)
    assert "flags/beacon.js" not in _view(client)[0]
    token = TOKEN.search(_view(client)[0]).group(1)
    answer = {"answer": "yes", "next": "/", "csrfmiddlewaretoken": token}
    assert client.post("/privacy/analytics/", answer).status_code == 302
    assert "flags/beacon.js" in _view(client)[0]
    assert "flags/beacon.js" in _view(client)[0]


def test_dashboard_page__staff_visit__rendered_for_the_visit_and_never_kept(member, admin_staff):
    member.is_test = True  # in production staff visit test members only
    member.save(update_fields=["is_test"])
    _home(member)
    visit = _client(member, **{VISITED_BY_SESSION_KEY: admin_staff.pk})
    for _ in range(2):
        html, rendered = _view(visit)
        assert rendered
        assert "Staff visit" in html
    html, rendered = _view(_client(member))
    assert rendered
    assert "Staff visit" not in html


def test_dashboard_page__message_to_show__shown_once_and_not_kept(member):
    _, (product,) = _home(member)
    client = _client(member)
    _view(client)
    token = TOKEN.search(_view(client)[0]).group(1)
    client.post(f"/offers/{product.pk}/save/", {"csrfmiddlewaretoken": token})
    html, rendered = _view(client)
    assert rendered
    assert 'class="messages"' in html
    html, _ = _view(client)
    assert 'class="messages"' not in html


def test_dashboard_page__what_if_value__rendered_every_time(member):
    _home(member)
    client = _client(member)
    for _ in range(2):
        response = client.get("/?value=350000")
        assert response.templates
        assert 'id="whatif-power">$80,000<' in response.content.decode()


def test_render_version__digest_of_the_templates(settings, tmp_path):
    (tmp_path / "page.html").write_text("<p>one</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    cached_pages.render_version.cache_clear()
    try:
        first = cached_pages.render_version()
        (tmp_path / "page.html").write_text("<p>two</p>")
        cached_pages.render_version.cache_clear()
        assert cached_pages.render_version() != first
    finally:
        cached_pages.render_version.cache_clear()


def test_dashboard_page__kept_answer__does_not_send_the_csrf_cookie_again(member):
    _home(member)
    client = _client(member)
    first = client.get("/")
    assert "csrftoken" in first.cookies  # a new browser gets its cookie
    client.get("/")  # kept from here on
    kept = client.get("/")

    assert not kept.templates
    assert "csrftoken" not in kept.cookies
    token = TOKEN.search(kept.content.decode()).group(1)
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 200


def test_dashboard_page__kept_answer_without_the_cookie__sets_one_its_token_matches(member):
    _home(member)
    client = _client(member)
    client.get("/")
    client.get("/")
    del client.cookies["csrftoken"]  # cleared by the browser, or never kept

    kept = client.get("/")

    assert not kept.templates
    assert "csrftoken" in kept.cookies
    token = TOKEN.search(kept.content.decode()).group(1)
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 200


def test_csrf_mask__django_unmasks_it_to_the_secret_and_every_mask_differs():
    from django.middleware.csrf import (
        CSRF_ALLOWED_CHARS,
        _get_new_csrf_string,
        _unmask_cipher_token,
    )

    secret = _get_new_csrf_string()
    tokens = {cached_pages._mask(secret) for _ in range(200)}

    assert len(tokens) == 200
    for token in tokens:
        assert len(token) == 64
        assert set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret
    # Every character of the alphabet turns up in the masks (no bias to a part of it).
    assert set("".join(t[:32] for t in tokens)) == set(CSRF_ALLOWED_CHARS)


def test_row_version__a_file_column_counts_by_its_name_read_or_not(member):
    env = member.environment
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(logo="logos/cascade.png")
        unread = Branding.objects.get(environment=env)
        before = cached_pages.row_version(unread)
        assert unread.logo.name == "logos/cascade.png"  # the descriptor now holds a FieldFile
        assert cached_pages.row_version(unread) == before
        assert cached_pages.row_version(Branding.objects.get(environment=env)) == before
        Branding.objects.filter(environment=env).update(logo="logos/other.png")
        assert cached_pages.row_version(Branding.objects.get(environment=env)) != before


def test_row_version__a_deferred_column_is_read_and_counts(member):
    env = member.environment
    with environment_scope(env):
        whole = cached_pages.row_version(Member.objects.get(pk=member.pk))
        deferred = Member.objects.defer("first_name").get(pk=member.pk)
        assert cached_pages.row_version(deferred) == whole
        Member.objects.filter(pk=member.pk).update(first_name="Zelda")
        changed = Member.objects.defer("first_name").get(pk=member.pk)
        assert cached_pages.row_version(changed) != whole
    assert cached_pages.row_version(None) == "-"
