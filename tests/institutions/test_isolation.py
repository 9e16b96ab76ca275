"""Cross-tenant isolation, generic over the URL configuration and the admin registry.

With two institutions and both environments populated, every member page and admin page
for another tenant's object answers 404, and lists never contain another tenant's rows.
New pages are covered without new code: a URL pattern with a parameter must say what it
is (an object page names its `tenant_model`; a token page is marked `not_an_object_page`).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from institutions.models import AuditEntry, TenantModel
from institutions.tenancy import environment_scope
from tests.conftest import make_tenant, member_client, staff_client
from tests.factories import TENANT_FACTORIES, MemberFactory, staff_user


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            entry.full_name = ":".join(filter(None, [namespace, entry.name]))
            yield prefix + str(entry.pattern), entry


def _declared_model(callback):
    for owner in (callback, getattr(callback, "view_class", None), getattr(callback, "cls", None)):
        if owner is None:
            continue
        model = getattr(owner, "tenant_model", None)
        if model is None and getattr(owner, "queryset", None) is not None:
            model = owner.queryset.model
        if model is not None:
            return model
    return None


def tenant_url_patterns():
    patterns = []
    for route, pattern in _walk(get_resolver(settings.TENANT_URLCONF).url_patterns):
        if not pattern.pattern.converters:
            continue
        patterns.append((route, pattern))
    return patterns


@pytest.mark.parametrize("route_pattern", tenant_url_patterns(), ids=lambda rp: rp[0])
def test_member_url_with_parameters__declares_what_it_serves(route_pattern):
    route, pattern = route_pattern
    callback = pattern.callback
    assert getattr(callback, "not_an_object_page", False) or _declared_model(callback), (
        f"{route}: give the view a `tenant_model` (object page) or mark it not_an_object_page"
    )


@pytest.fixture
def world(db):
    """Two institutions, each environment populated with one row of every tenant model."""
    a, b = make_tenant(), make_tenant()
    rows = {}
    for tenant in (a, b):
        for env in (tenant.staging, tenant.production):
            for model, factory in TENANT_FACTORIES.items():
                rows[(env.pk, model)] = factory(environment=env)
    return a, b, rows


def _object_pages():
    pages = []
    for route, pattern in tenant_url_patterns():
        model = _declared_model(pattern.callback)
        if model is not None:
            pages.append((route, pattern, model))
    return pages


def _api_view(callback):
    from institutions.api.views import ApiView

    view_class = getattr(callback, "cls", None)
    return view_class if isinstance(view_class, type) and issubclass(view_class, ApiView) else None


@pytest.mark.django_db
def test_member_object_pages__of_another_tenant__answer_404(world):
    from tests.api.helpers import api_client

    a, b, rows = world
    member = MemberFactory(environment=a.production)
    client = member_client(member)
    api = api_client(a.production)  # the API's object pages: with a key of every scope
    for route, pattern, model in _object_pages():
        (kwarg,) = pattern.pattern.converters
        view = _api_view(pattern.callback)
        lookup = getattr(view, "lookup_field", "pk") if view else "pk"
        for env in (a.staging, b.production, b.staging):
            other = rows[(env.pk, model)]
            url = reverse(
                pattern.full_name,
                urlconf=settings.TENANT_URLCONF,
                kwargs={kwarg: getattr(other, lookup)},
            )
            if view is None:
                response = client.get(url)
            elif "get" in view.http_method_names and hasattr(view, "get"):
                response = api.get(url)
            else:
                response = api.post(url, {}, format="json")
            assert response.status_code == 404, f"{route} for {env} answered {response.status_code}"


def admin_tenant_models():
    return [m for m in admin.site._registry if issubclass(m, TenantModel)]


@pytest.mark.django_db
@pytest.mark.parametrize("model", admin_tenant_models(), ids=lambda m: m._meta.label)
def test_admin_pages__of_another_tenant__answer_404_and_lists_exclude_them(model, world):
    a, b, rows = world
    staff = staff_user(a.institution, "admin", "it", "marketing", "lending")
    client = staff_client(staff, a.staging)
    opts = model._meta
    mine = rows[(a.staging.pk, model)]
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    listed = {obj.pk for obj in changelist.context["cl"].result_list}
    assert mine.pk in listed, f"{opts.label} list leaves out the tenant's own row"
    for env in (a.production, b.staging, b.production):
        other = rows[(env.pk, model)]
        assert other.pk not in listed, f"{opts.label} list shows a row of {env}"
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[other.pk])
            assert client.get(url).status_code == 404, f"{view} of {env} row"
    own = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[mine.pk])
    assert client.get(own).status_code == 200


@pytest.mark.django_db
def test_admin_institution_and_audit__of_another_institution__answer_404(world):
    a, b, _ = world
    staff = staff_user(a.institution, "admin")
    client = staff_client(staff, a.staging)
    response = client.get(reverse("admin:institutions_institution_change", args=[b.institution.pk]))
    assert response.status_code == 404
    listed = (
        client.get(reverse("admin:institutions_institution_changelist")).context["cl"].result_list
    )
    assert [i.pk for i in listed] == [a.institution.pk]
    other_entry = AuditEntry.objects.filter(institution=b.institution).first()
    assert other_entry is not None
    response = client.get(reverse("admin:institutions_auditentry_change", args=[other_entry.pk]))
    assert response.status_code == 404
    entries = (
        client.get(reverse("admin:institutions_auditentry_changelist")).context["cl"].result_list
    )
    assert entries
    assert {e.institution_id for e in entries} == {a.institution.pk}


@pytest.mark.django_db
def test_admin_environment_switch__to_another_institution__is_refused(world):
    a, b, _ = world
    staff = staff_user(a.institution, "admin")
    client = staff_client(staff, a.staging)
    response = client.post(reverse("admin:switch_environment"), {"environment": b.production.pk})
    assert response.status_code == 400
    response = client.post(reverse("admin:switch_environment"), {"environment": a.production.pk})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).context["chimney_environment"] == a.production


@pytest.mark.django_db
def test_member_session__on_another_tenant_host__is_not_signed_in(world):
    a, b, _ = world
    member = MemberFactory(environment=a.production)
    client = member_client(member)
    assert client.get("/").status_code == 200
    # The test client sends the same cookie to every host: the session must not cross.
    for env in (a.staging, b.production):
        response = client.get("/", HTTP_HOST=env.host)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_api_lists__show_only_rows_of_the_keys_environment(world):
    from homes.models import Member
    from notifications.models import Delivery
    from tests.api.helpers import api_client

    a, b, rows = world
    for env in (a.staging, a.production, b.production):
        api = api_client(env)
        listed = {m["id"] for m in api.get("/api/v1/members/?limit=1000").json()["results"]}
        assert rows[(env.pk, Member)].pk in listed
        with environment_scope(env):
            assert listed == set(
                Member.objects.filter(environment=env).values_list("pk", flat=True)
            )
        deliveries = api.get("/api/v1/deliveries/?limit=1000").json()["results"]
        with environment_scope(env):
            own = set(Delivery.objects.filter(environment=env).values_list("pk", flat=True))
        assert {d["id"] for d in deliveries} == own
