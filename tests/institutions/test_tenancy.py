import pytest
from django.apps import apps
from django.db import IntegrityError, models
from django.test import Client
from django_scopes import ScopeError

from institutions.models import Domain, Environment, TenantModel
from institutions.tenancy import current_environment, environment_scope, resolve_host
from tests.factories import TENANT_FACTORIES, InstitutionFactory


def tenant_models():
    return [m for m in apps.get_models() if issubclass(m, TenantModel)]


def test_tenant_models__each_has_a_factory():
    missing = [m._meta.label for m in tenant_models() if m not in TENANT_FACTORIES]
    assert not missing, f"add factories to tests/factories.py TENANT_FACTORIES: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_unscoped_query__on_every_tenant_model__raises(model, tenant):
    TENANT_FACTORIES[model](environment=tenant.production)
    with pytest.raises(ScopeError):
        list(model.objects.all())
    with pytest.raises(ScopeError):
        model._default_manager.filter(pk=1).exists()
    with pytest.raises(ScopeError):
        model.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_scoped_query__sees_only_its_environment(model, tenant, other_tenant):
    mine = TENANT_FACTORIES[model](environment=tenant.production)
    TENANT_FACTORIES[model](environment=tenant.staging)
    TENANT_FACTORIES[model](environment=other_tenant.production)
    with environment_scope(tenant.production):
        rows = list(model.objects.all())
    assert mine in rows
    assert {r.environment_id for r in rows} == {tenant.production.pk}


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_unique_constraints__of_tenant_models__include_environment(model):
    for field in model._meta.concrete_fields:
        assert not (field.unique and not field.primary_key), (
            f"{model._meta.label}.{field.name} is unique across tenants"
        )
    assert not model._meta.unique_together, "use UniqueConstraint with environment"
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names = set(constraint.fields)
            names |= {getattr(e, "name", None) for e in constraint.expressions}
            assert "environment" in names, f"{constraint.name} lacks environment"


@pytest.mark.django_db
def test_institution_create__makes_exactly_staging_and_production(tenant):
    kinds = sorted(tenant.institution.environments.values_list("kind", flat=True))
    assert kinds == ["production", "staging"]
    with pytest.raises(IntegrityError):
        Environment.objects.create(institution=tenant.institution, kind="staging")


@pytest.mark.django_db
def test_environment_scope__none__is_refused():
    with pytest.raises(ValueError, match="saved Environment"), environment_scope(None):
        pass


@pytest.mark.django_db
def test_resolve_host__production_staging_custom_and_unknown(settings):
    institution = InstitutionFactory(slug="acme")
    production = institution.environments.get(kind="production")
    staging = institution.environments.get(kind="staging")
    Domain.objects.create(domain="home.acme-cu.org", environment=staging)
    assert resolve_host("acme.chimney.test").environment == production
    assert resolve_host("ACME.chimney.test:8000").environment == production
    assert resolve_host("acme.staging.chimney.test").environment == staging
    assert resolve_host("home.acme-cu.org").environment == staging
    assert resolve_host("chimney.test").kind == "platform"
    assert resolve_host("nobody.chimney.test") is None
    assert resolve_host("a.b.chimney.test") is None
    assert resolve_host(".staging.chimney.test") is None
    assert resolve_host("example.org") is None


@pytest.mark.django_db
def test_request__unknown_host__answers_404(tenant):
    response = Client(HTTP_HOST="nobody.chimney.test").get("/login/")
    assert response.status_code == 404
    assert b"no institution at this address" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["bad host!", "a..b", "x" * 300, "[::1"])
def test_request__malformed_host__answers_400_not_500(host):
    response = Client(HTTP_HOST=host).get("/")
    assert response.status_code in (400, 404)


@pytest.mark.django_db
def test_scope_middleware__tenant_host__activates_its_environment(tenant, rf):
    from django.http import HttpResponse

    from institutions.middleware import ScopeMiddleware

    seen = {}

    def view(request):
        seen["env"] = current_environment()
        return HttpResponse("ok")

    request = rf.get("/", HTTP_HOST=tenant.staging.host)
    request.environment = tenant.staging
    ScopeMiddleware(view)(request)
    assert seen["env"] == tenant.staging
    assert current_environment() is None  # and it is closed again after the request


@pytest.mark.django_db
def test_scope_middleware__platform_host_anonymous__leaves_no_scope(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    from institutions.middleware import ScopeMiddleware

    seen = {}

    def view(request):
        seen["env"] = current_environment()
        return HttpResponse("ok")

    request = rf.get("/")
    request.environment = None
    request.user = AnonymousUser()
    request.session = {}
    ScopeMiddleware(view)(request)
    assert seen["env"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("atomic", [True, False])
def test_for_each_environment__one_fails__logged__others_run__raised_at_the_end(
    tenant, other_tenant, caplog, atomic
):
    from institutions.models import Branding
    from institutions.tenancy import EnvironmentsFailed, for_each_environment

    broken = tenant.staging
    seen = []

    def visit(environment):
        seen.append(environment.pk)
        assert current_environment() == environment
        Branding.objects.filter(environment=environment).update(display_name="visited")
        if environment == broken:
            raise ValueError("a bad row here")
        return environment.pk * 10

    with pytest.raises(EnvironmentsFailed) as failed:
        for_each_environment(visit, atomic=atomic)
    everyone = {tenant.staging.pk, tenant.production.pk}
    everyone |= {other_tenant.staging.pk, other_tenant.production.pk}
    assert set(seen) == everyone
    assert isinstance(failed.value.__cause__, ValueError)
    assert failed.value.failed == {broken.pk: failed.value.__cause__}
    assert failed.value.results == {pk: pk * 10 for pk in everyone - {broken.pk}}
    assert str(broken) in str(failed.value)
    assert "a bad row here" in str(failed.value)
    (logged,) = [r for r in caplog.records if r.name == "institutions.tenancy"]
    assert str(broken) in logged.getMessage()
    assert logged.exc_info is not None
    with environment_scope(broken):
        visited = Branding.objects.get(environment=broken).display_name == "visited"
    assert visited is not atomic  # atomic: the failed environment's writes rolled back


@pytest.mark.django_db
def test_for_each_environment__all_succeed__results_by_environment_id(tenant):
    from institutions.tenancy import for_each_environment

    assert for_each_environment(lambda env: env.kind, atomic=True) == {
        tenant.staging.pk: "staging",
        tenant.production.pk: "production",
    }
