"""The demo's institutions (`manage.py demo_load`, run by `python3 dev.py run` on every
start): made once, then left as staff configure them."""

from __future__ import annotations

import pytest

from institutions.demo import demo_load
from institutions.models import Branding, Institution
from institutions.services import branding_update
from institutions.tenancy import environment_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_recorded_sales(monkeypatch, tmp_path):
    # Without the King County sales the demo loads in a fraction of the time.
    monkeypatch.setenv("CHIMNEY_SALES_CSV", str(tmp_path / "no-sales.csv"))


def test_demo_load__run_again_after_a_brand_colour_change__keeps_the_staff_colour(
    no_recorded_sales,
):
    """Marketing changes the brand colour (scenario 2); the next `dev.py run` silently puts
    the demo colours and support contacts back in staging and production, with no audit
    entry. Loading the demo again should leave configuration staff changed alone."""
    demo_load()
    env = Institution.objects.get(slug="cascade").environments.get(kind="staging")
    with environment_scope(env):
        assert Branding.objects.get(environment=env).primary_color == "#1f4e79"  # the demo's
        branding_update(environment=env, actor=None, primary_color="#123456")
    demo_load()
    with environment_scope(env):
        assert Branding.objects.get(environment=env).primary_color == "#123456"
