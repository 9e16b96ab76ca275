"""The OpenAPI schema: generated from the code without warnings, committed as openapi.yaml,
served at /api/v1/schema/ with a reference page at /api/v1/docs/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from homes.services.sync import ConcurrentChange
from tests.api.helpers import api_client, member_row

SCHEMA_FILE = Path(settings.BASE_DIR) / "openapi.yaml"
REFRESH = (
    "DEBUG=1 .venv/bin/python manage.py spectacular --urlconf chimney.urls_tenant "
    "--file openapi.yaml --validate --fail-on-warn"
)


def test_committed_schema__matches_the_code(tmp_path):
    generated = tmp_path / "openapi.yaml"
    # --fail-on-warn: a view or field the generator cannot describe fails here.
    call_command(
        "spectacular",
        urlconf=settings.TENANT_URLCONF,
        file=str(generated),
        validate=True,
        fail_on_warn=True,
    )
    assert SCHEMA_FILE.read_text() == generated.read_text(), (
        f"openapi.yaml is out of date with the code; refresh it with:\n    {REFRESH}"
    )


def test_schema__documents_every_operation_with_its_errors():
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    operations = {
        (path, method): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert ("/api/v1/members/", "post") in operations
    for (path, method), operation in operations.items():
        assert operation["security"] == [{"apiKey": []}], path
        for code in ("400", "401", "403", "404", "429"):
            assert code in operation["responses"], (path, method, code)
        if method == "post":
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "Idempotency-Key" in names, path
            assert {"409", "413", "415", "422"} <= set(operation["responses"]), path


@pytest.mark.django_db
def test_schema_and_reference_page__are_served_on_every_environment_host(tenant):
    client = api_client(tenant.staging)
    served = client.get("/api/v1/schema/", HTTP_AUTHORIZATION="")
    assert served.status_code == 200
    assert yaml.safe_load(served.content) == yaml.safe_load(SCHEMA_FILE.read_text())
    page = client.get("/api/v1/docs/", HTTP_AUTHORIZATION="")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/api/v1/schema/" in html


@pytest.mark.django_db
def test_members_upsert__concurrent_change_409__is_described_by_the_schema(tenant, monkeypatch):
    """members_upsert (and sales_import) answer 409 `conflict` on a concurrent change, with
    no Idempotency-Key at all: the schema names the code and says what it means."""

    def clash(**kwargs):
        raise ConcurrentChange("deadlock")

    monkeypatch.setattr("homes.api.views.member_bulk_upsert", clash)
    response = api_client(tenant.staging).post(
        "/api/v1/members/", {"members": [member_row(1)]}, format="json"
    )
    assert response.status_code == 409
    code = response.json()["error"]["code"]
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    documented_codes = schema["components"]["schemas"]["ErrorDetail"]["properties"]["code"][
        "description"
    ]
    assert code in documented_codes
    described = schema["paths"]["/api/v1/members/"]["post"]["responses"]["409"]["description"]
    assert "`conflict`" in described
    assert "retry" in described
