"""Schemathesis over the whole committed schema, against the WSGI application in process:
valid and invalid requests to every operation, with a key of every scope.

Checks: no server error, every answer's status and body as the schema says, invalid data
refused. The events operation accepts the good rows of a batch by design (documented), so
a batch with one invalid event among valid ones is not "refused": the refusal check is
left out there only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
import yaml
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tests.api.helpers import api_client, member_row
from tests.factories import MemberFactory
from tests.notifications.factories import DeliveryFactory
from tests.releases.factories import release_factory

#: Examples per operation and generation mode, after the coverage phase's boundary cases:
#: bounded so the whole run stays within two or three minutes on a busy two-core machine.
#: CHIMNEY_SCHEMATHESIS_EXAMPLES=500 (and _RANDOM=1 for a new seed) explores further.
MAX_EXAMPLES = int(os.environ.get("CHIMNEY_SCHEMATHESIS_EXAMPLES", "30"))
DETERMINISTIC = os.environ.get("CHIMNEY_SCHEMATHESIS_RANDOM", "") != "1"

config = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "with-security-parameters": False,
            "database": "none",
            "deterministic": DETERMINISTIC,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
        },
        "operations": [
            {
                "include-operation-id": "events_ingest",
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(
    yaml.safe_load((Path(django_settings.BASE_DIR) / "openapi.yaml").read_text()), config=config
)
schema.app = WSGIHandler()


@pytest.fixture
def api_world(db, tenant, settings):
    """A production environment with members, homes, deliveries and a deployed release."""
    settings.API_THROTTLE_RATE = "100000/min"
    env = tenant.production
    client = api_client(env)
    rows = [member_row(i) for i in range(3)]
    assert client.post("/api/v1/members/", {"members": rows}, format="json").status_code == 200
    for _ in range(2):
        DeliveryFactory(environment=env, member=MemberFactory(environment=env))
    from django.utils import timezone

    release_factory(environment=tenant.staging, state="deployed", deployed_at=timezone.now())
    return env, client.raw_key


@pytest.fixture
def served(api_world):
    """Requests keep the test's database connection, like with Django's test client (a WSGI
    server's handler closes it after each request, which would end the test's transaction).
    Set up after the fixture's own requests: the test client restores the signal."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield api_world
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
# The fixture's rows are shared by an operation's examples on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api__conforms_to_its_schema(case, served):
    environment, raw_key = served
    case.call_and_validate(
        base_url=f"http://{environment.host}",
        headers={"Authorization": f"Bearer {raw_key}"},
    )
