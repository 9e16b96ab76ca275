"""The tile opened by launch token, as digital banking frames it on its own site (where the
browser keeps no cookie of ours): the member's figures without a session, and buttons that
sign the member in at the top level. The end-to-end run is in test_tile_embedded.py."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from homes.middleware import MEMBER_SESSION_KEY
from homes.models import Member
from homes.services import launch_link_build
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.homes.factories import home_settings_factory
from tests.homes.test_member_pages import _home

pytestmark = pytest.mark.django_db


@pytest.fixture
def banked(tenant):
    """A member digital banking knows as M-1, with a $300,000 home ($40,000 to borrow)."""
    member = MemberFactory(environment=tenant.production, external_id="M-1")
    _home(member)
    return member


def _token(member) -> str:
    return launch_link_build(environment=member.environment, external_id=member.external_id)


def _framed(member, token=None):
    """The tile as the bank's frame opens it: a browser with no cookie of ours."""
    client = Client(HTTP_HOST=member.environment.host)
    return client.get("/tile/", {"token": token or _token(member)})


def _links(response) -> dict[str, str]:
    html = response.content.decode()
    found = re.findall(r'<a (?:class="button" )?href="([^"]+)" target="_top">([^<]+)</a>', html)
    return {text: href for href, text in found}


def test_tile__launch_token__shows_the_members_figures_without_a_session(banked):
    response = _framed(banked)
    assert response.status_code == 200
    html = response.content.decode()
    assert "$300,000" in html
    assert "$40,000" in html
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # nothing to keep in a frame
    assert "no-store" in response["Cache-Control"]  # it holds sign-in links: never kept
    assert "private" in response["Cache-Control"]
    assert response["Content-Security-Policy"].startswith("frame-ancestors 'self'")
    assert "X-Frame-Options" not in response


def test_tile__launch_token_replayed_forged_or_of_another_environment__no_figures(banked, tenant):
    token = _token(banked)
    assert _framed(banked, token).status_code == 200
    replayed = _framed(banked, token)
    assert replayed.status_code == 400
    assert "already used" in replayed.content.decode()
    forged = _framed(banked, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    staging = launch_link_build(environment=tenant.staging, external_id="M-1")
    other_environment = _framed(banked, staging)
    for response in (replayed, forged, other_environment):
        assert response.status_code == 400
        html = response.content.decode()
        assert "$300,000" not in html
        assert "/tile/sign-in/" not in html
        assert "Check my home value" in html  # the plain buttons: sign in as usual


def test_tile__launch_token_of_a_member_who_must_opt_in__no_figures(banked):
    home_settings_factory(banked.environment, enrollment_mode="opt_in")
    with environment_scope(banked.environment):
        Member.objects.filter(pk=banked.pk).update(enrollment="pending")
    response = _framed(banked)
    assert response.status_code == 200
    assert "$300,000" not in response.content.decode()
    assert "/tile/sign-in/" in _links(response)["Check my home value"]


def test_tile__check_my_home_value__signs_in_once_at_the_top_and_opens_the_dashboard(banked):
    response = _framed(banked)
    link = _links(response)["Check my home value"]
    assert link.startswith("/tile/sign-in/")
    top = Client(HTTP_HOST=banked.environment.host)  # the top-level window: cookies kept
    signed_in = top.get(link)
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    assert top.session[MEMBER_SESSION_KEY] == banked.pk
    assert "$300,000" in top.get("/").content.decode()
    replay = Client(HTTP_HOST=banked.environment.host).get(link)
    assert replay.status_code == 400
    assert "already used" in replay.content.decode()


def test_tile__i_dont_own_a_home__signs_in_and_asks_to_confirm(banked):
    response = _framed(banked)
    top = Client(HTTP_HOST=banked.environment.host)
    signed_in = top.get(_links(response)["I don't own a home"])
    assert signed_in["Location"] == "/no-home/"
    assert top.get("/no-home/").status_code == 200  # the confirmation; nothing changed yet
    banked.refresh_from_db()
    assert banked.enrollment == Member.Enrollment.ENROLLED
    top.post("/no-home/")
    banked.refresh_from_db()
    assert banked.enrollment == Member.Enrollment.OPTED_OUT


def test_tile_sign_in__expired_forged_or_of_another_environment__refused(
    banked, tenant, monkeypatch
):
    response = _framed(banked)
    link = _links(response)["Check my home value"]
    staging = Client(HTTP_HOST=tenant.staging.host)
    assert staging.get(link).status_code == 400
    assert MEMBER_SESSION_KEY not in staging.session
    assert Client(HTTP_HOST=tenant.production.host).get("/tile/sign-in/forged/").status_code == 400
    monkeypatch.setattr("homes.services.login.TILE_LINK_TTL", timedelta(seconds=-1))
    top = Client(HTTP_HOST=tenant.production.host)
    expired = top.get(link)
    assert expired.status_code == 400
    assert "expired" in expired.content.decode()
    assert MEMBER_SESSION_KEY not in top.session


def test_tile__without_a_token__the_sessions_member_as_before(banked):
    from tests.conftest import member_client

    response = member_client(banked).get("/tile/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "$300,000" in html
    assert "/tile/sign-in/" not in html
    assert 'action="/no-home/"' in html
    assert "no-store" in response["Cache-Control"]


def test_tile__without_a_token_or_a_session__the_buttons_without_figures(tenant):
    """Opening http://<slug>.localhost:8000/tile/ in a browser that is not signed in (the
    README: "Digital banking frames /tile/?token=…"; the tile's docstring: opened without a
    token it shows the session's member) crashes with a 500 (AttributeError on
    request.member.enrollment). It should show the tile's buttons, as for a member who may
    not see figures."""
    response = Client(HTTP_HOST=tenant.production.host).get("/tile/")
    assert response.status_code == 200
    assert set(_links(response)) == {"Check my home value", "I don't own a home"}
    assert "Estimated value" not in response.content.decode()
