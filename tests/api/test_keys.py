"""API keys: per environment, hashed, shown once, scoped, expiring, rotated, revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from institutions.api.views import ApiView
from institutions.models import ApiKey, ApiScope, AuditEntry
from institutions.services.api_keys import api_key_revoke, api_key_rotate
from institutions.tenancy import environment_scope
from tests.api.helpers import api_client, member_row
from tests.conftest import make_tenant, staff_client
from tests.factories import staff_user
from tests.institutions.factories import api_key_with_secret


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields", "rows"}, body
    return body["error"]


@pytest.mark.django_db
def test_api_key__prefix_says_the_environment__and_only_its_hash_is_stored(tenant):
    staging_key, staging_raw = api_key_with_secret(tenant.staging)
    production_key, production_raw = api_key_with_secret(tenant.production)
    assert staging_raw.startswith(f"chk_test_{staging_key.public_id}_")
    assert production_raw.startswith(f"chk_live_{production_key.public_id}_")
    with environment_scope(tenant.production):
        stored = ApiKey.objects.get(pk=production_key.pk)
    assert production_raw not in str(stored.__dict__)
    assert stored.key_hash != production_raw
    assert len(stored.key_hash) == 64
    entry = AuditEntry.objects.filter(object_type="institutions.ApiKey").latest("id")
    assert production_raw not in str(entry.changes)
    assert entry.changes["key_hash"]["after"] == "[redacted]"


@pytest.mark.django_db
def test_api_key__valid__answers_with_its_environment_and_scopes(tenant):
    client = api_client(tenant.production, scopes=["members:write", "offers:read"])
    response = client.get("/api/v1/key/")
    assert response.status_code == 200
    assert response.json() == {
        "name": "core banking",
        "prefix": client.api_key.display_prefix,
        "environment": "production",
        "institution": tenant.institution.slug,
        "scopes": ["members:read", "members:write", "offers:read"],
        "expires_at": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer", "Send the key as `Authorization: Bearer <key>`."),
        ("Basic dXNlcjpwYXNz", "Send the key as `Authorization: Bearer <key>`."),
        ("Bearer not-a-key", "The API key is malformed."),
        ("Bearer chk_test_0123456789abcdef_" + "x" * 43, "The API key is not valid on this host."),
    ],
)
def test_request__without_a_valid_key__is_refused_401_in_the_error_format(tenant, header, message):
    from rest_framework.test import APIClient

    client = APIClient(HTTP_HOST=tenant.staging.host)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/members/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error = _error(response)
    assert error["code"] == "not_authenticated"
    assert error["message"] == message


@pytest.mark.django_db
def test_key__of_another_environment_or_institution__is_refused(tenant):
    other = make_tenant()
    _, staging_raw = api_key_with_secret(tenant.staging)
    _, production_raw = api_key_with_secret(tenant.production)
    cases = [
        (staging_raw, tenant.production, "This is a staging key; this host is the production"),
        (production_raw, tenant.staging, "This is a production key; this host is the staging"),
        (production_raw, other.production, "The API key is not valid on this host."),
        (staging_raw, other.staging, "The API key is not valid on this host."),
    ]
    for raw, environment, message in cases:
        response = api_client(environment, raw_key=raw).get("/api/v1/key/")
        assert response.status_code == 401, (environment, response.content)
        assert _error(response)["message"].startswith(message)
    # Each on its own host works.
    assert api_client(tenant.staging, raw_key=staging_raw).get("/api/v1/key/").status_code == 200
    assert (
        api_client(tenant.production, raw_key=production_raw).get("/api/v1/key/").status_code == 200
    )


@pytest.mark.django_db
def test_key__expired__is_refused(tenant):
    key, raw = api_key_with_secret(
        tenant.production, expires_at=timezone.now() + timedelta(hours=1)
    )
    client = api_client(tenant.production, raw_key=raw)
    assert client.get("/api/v1/key/").status_code == 200
    ApiKey._base_manager.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/key/")
    assert response.status_code == 401
    assert _error(response)["message"] == "The API key has expired."


@pytest.mark.django_db
def test_key__expiry_in_the_past__cannot_be_made(tenant):
    with pytest.raises(ValidationError, match="future"):
        api_key_with_secret(tenant.production, expires_at=timezone.now() - timedelta(days=1))


@pytest.mark.django_db
def test_key__revoked__is_refused_at_once(tenant):
    client = api_client(tenant.production)
    assert client.get("/api/v1/key/").status_code == 200
    with environment_scope(tenant.production):
        api_key_revoke(environment=tenant.production, key=client.api_key, reason="leaked")
    response = client.get("/api/v1/key/")
    assert response.status_code == 401
    assert _error(response)["message"] == "The API key was revoked."


@pytest.mark.django_db
def test_key_rotation__old_key_works_during_the_overlap_then_is_refused(tenant):
    env = tenant.production
    old, old_raw = api_key_with_secret(env, scopes=["members:read"])
    with environment_scope(env):
        new, new_raw = api_key_rotate(environment=env, key=old, overlap=timedelta(hours=2))
    assert new.scopes == ["members:read"]
    assert new.name == old.name
    assert new.rotated_from_id == old.pk
    assert new_raw != old_raw
    old.refresh_from_db()
    assert timedelta(hours=1, minutes=59) < old.expires_at - timezone.now() <= timedelta(hours=2)
    for raw in (old_raw, new_raw):
        assert api_client(env, raw_key=raw).get("/api/v1/members/").status_code == 200
    # The overlap ends.
    ApiKey._base_manager.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client(env, raw_key=old_raw).get("/api/v1/members/").status_code == 401
    assert api_client(env, raw_key=new_raw).get("/api/v1/members/").status_code == 200


@pytest.mark.django_db
def test_key_rotation__of_a_revoked_key__is_refused(tenant):
    env = tenant.production
    key, _ = api_key_with_secret(env)
    with environment_scope(env):
        api_key_revoke(environment=env, key=key)
        with pytest.raises(ValidationError, match="revoked"):
            api_key_rotate(environment=env, key=key)


@pytest.mark.django_db
def test_key__last_used_time__is_written_at_most_once_a_minute(tenant, django_assert_num_queries):
    client = api_client(tenant.production)
    key = client.api_key
    assert key.last_used_at is None
    client.get("/api/v1/key/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get("/api/v1/key/")
    key.refresh_from_db()
    assert key.last_used_at == first  # within the minute: not written again
    ApiKey._base_manager.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/key/")
    key.refresh_from_db()
    assert key.last_used_at > first


@pytest.mark.django_db
def test_scopes__a_key_without_the_scope__is_refused_403_naming_it(tenant):
    client = api_client(tenant.production, scopes=["offers:read"])
    response = client.post("/api/v1/members/", {"members": []}, format="json")
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "permission_denied"
    assert error["message"] == "This API key lacks the members:write scope."
    # members:write grants reading members too; events:write does not.
    assert (
        api_client(tenant.production, scopes=["members:write"]).get("/api/v1/members/").status_code
        == 200
    )
    response = api_client(tenant.production, scopes=["events:write"]).get("/api/v1/members/")
    assert _error(response)["message"] == "This API key lacks the members:read scope."


@pytest.mark.django_db
def test_scopes__head_needs_the_scope_of_get__options_only_describes_the_operation(tenant):
    env = tenant.production
    assert (
        api_client(env)
        .post("/api/v1/members/", {"members": [member_row(1)]}, format="json")
        .status_code
        == 200
    )
    lacking = api_client(env, scopes=["events:write"])
    assert lacking.get("/api/v1/members/").status_code == 403
    assert lacking.head("/api/v1/members/").status_code == 403
    assert api_client(env, scopes=["members:read"]).head("/api/v1/members/").status_code == 200
    # OPTIONS tells what the operation is (as the public schema does), no data of the tenant.
    options = lacking.options("/api/v1/members/")
    assert options.status_code == 200
    assert set(options.json()) == {"name", "description", "renders", "parses"}


class _PartlyDeclared(ApiView):
    required_scopes = {"GET": ApiScope.MEMBERS_READ}

    def get(self, request):
        return Response({"read": True})

    def delete(self, request):
        return Response({"deleted": True})


@pytest.mark.django_db
def test_scopes__a_method_the_view_names_no_scope_for__is_refused(tenant):
    env = tenant.production
    _, raw = api_key_with_secret(env)  # every scope
    view = _PartlyDeclared.as_view()
    factory = APIRequestFactory()

    def call(method):
        request = getattr(factory, method)("/api/v1/partly/", HTTP_AUTHORIZATION=f"Bearer {raw}")
        request.environment = env
        with environment_scope(env):
            return view(request)

    assert call("get").status_code == 200
    response = call("delete")
    assert response.status_code == 403
    assert response.data["error"]["code"] == "permission_denied"
    assert call("put").status_code == 405  # not an operation of the view at all


@pytest.mark.django_db
def test_api__on_the_platform_host__does_not_exist(tenant):
    _, raw = api_key_with_secret(tenant.production)
    client = api_client(tenant.production, raw_key=raw, host="chimney.test")
    assert client.get("/api/v1/key/").status_code == 404


# -- the admin ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin__making_a_key__shows_it_once_and_stores_only_its_hash(tenant):
    it = staff_user(tenant.institution, "it")
    client = staff_client(it, tenant.production)
    response = client.post(
        reverse("admin:institutions_apikey_add"),
        {"name": "Data warehouse", "scopes": ["metrics:read", "offers:read"], "expires_at": ""},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw.startswith("chk_live_")
    assert raw in response.content.decode()
    with environment_scope(tenant.production):
        key = ApiKey.objects.get(name="Data warehouse")
    assert key.scopes == ["metrics:read", "offers:read"]
    assert key.created_by == it
    page = client.get(reverse("admin:institutions_apikey_change", args=[key.pk])).content.decode()
    assert raw not in page
    assert key.public_id in page
    assert api_client(tenant.production, raw_key=raw).get("/api/v1/key/").status_code == 200


@pytest.mark.django_db
def test_admin__rotate_and_revoke(tenant):
    it = staff_user(tenant.institution, "it")
    client = staff_client(it, tenant.staging)
    key, raw = api_key_with_secret(tenant.staging)
    response = client.post(
        reverse("admin:institutions_apikey_rotate", args=[key.pk]), {"overlap_hours": 1}
    )
    assert response.status_code == 200
    new_raw = response.context["raw_key"]
    assert new_raw.startswith("chk_test_")
    assert new_raw != raw
    new_key = response.context["key"]
    response = client.post(
        reverse("admin:institutions_apikey_revoke", args=[new_key.pk]), {"reason": "leaked"}
    )
    assert response.status_code == 302
    assert api_client(tenant.staging, raw_key=new_raw).get("/api/v1/key/").status_code == 401
    assert api_client(tenant.staging, raw_key=raw).get("/api/v1/key/").status_code == 200
    entry = AuditEntry.objects.filter(object_id=str(new_key.pk)).latest("id")
    assert entry.reason == "leaked"
    assert entry.actor == it


@pytest.mark.django_db
def test_admin__marketing__cannot_see_or_make_keys(tenant):
    marketing = staff_user(tenant.institution, "marketing")
    client = staff_client(marketing, tenant.staging)
    key, _ = api_key_with_secret(tenant.staging)
    assert client.get(reverse("admin:institutions_apikey_changelist")).status_code == 403
    assert client.get(reverse("admin:institutions_apikey_add")).status_code == 403
    response = client.post(reverse("admin:institutions_apikey_revoke", args=[key.pk]), {})
    assert response.status_code == 403
