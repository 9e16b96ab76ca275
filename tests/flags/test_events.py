"""Events: the homes/notifications sink, data plans, batch ingestion and the beacon."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test.utils import CaptureQueriesContext

from flags.defaults import demo_plan_points
from flags.models import DataPlanVersion, Event
from flags.services.events import events_ingest
from flags.services.plans import analytics_consent_set, data_plan_version_create
from institutions import events
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory
from tests.flags.factories import DataPlanVersionFactory
from tests.homes.test_member_pages import _home

OFFER = {"offer_id": 7, "offer_kind": "heloc"}


@pytest.fixture
def plan(tenant):
    env = tenant.production
    with environment_scope(env):
        return data_plan_version_create(
            environment=env, points=demo_plan_points(), actor=None, unplanned="quarantine"
        )


@pytest.mark.django_db
def test_sink__homes_event__recorded_planned_with_is_test_from_the_member(tenant, plan):
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    real = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_selected", member=tester, properties=OFFER)
    events.emit(
        environment=env,
        name="channel_preference_set",
        member=real,
        properties={"channel": "push", "category": "offers"},
    )
    with environment_scope(env):
        selected = Event.objects.get(name="offer_selected")
        chosen = Event.objects.get(name="channel_preference_set")
    assert (selected.is_test, selected.member_id, selected.plan_status) == (
        True,
        tester.pk,
        "planned",
    )
    assert selected.plan_version == plan.version
    assert (chosen.is_test, chosen.source, chosen.disposition) == (False, "server", "accepted")


@pytest.mark.django_db
def test_plan__invalid_and_unplanned__are_marked_and_quarantined_by_policy(tenant, plan):
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties={"offer_id": 1})
    events.emit(environment=env, name="mystery_clicked", member=member, properties={})
    with environment_scope(env):
        invalid = Event.objects.get(name="offer_viewed")
        unplanned = Event.objects.get(name="mystery_clicked")
    assert invalid.plan_status == "invalid"
    assert invalid.disposition == "quarantined"  # the plan blocks invalid data by default
    assert any("offer_kind" in v for v in invalid.violations)
    assert unplanned.plan_status == "unplanned"
    assert unplanned.disposition == "quarantined"  # this plan blocks unplanned data


@pytest.mark.django_db
def test_plan__allow_policies__keep_bad_events_accepted_but_marked(tenant):
    env = tenant.production
    with environment_scope(env):
        data_plan_version_create(
            environment=env, points=demo_plan_points(), actor=None, invalid="allow"
        )
        result = events_ingest(
            environment=env,
            events=[{"name": "offer_saved", "properties": {}}, {"name": "unknown_thing"}],
        )
    assert [r.status for r in result.rows] == ["accepted", "accepted"]
    assert [r.plan_status for r in result.rows] == ["invalid", "unplanned"]


@pytest.mark.django_db
def test_plan__invalid_json_schema__is_refused_naming_the_event(tenant):
    env = tenant.staging
    bad = {"offer_viewed": {"description": "x", "schema": {"type": "nonsense"}}}
    with environment_scope(env), pytest.raises(ValidationError) as caught:
        data_plan_version_create(environment=env, points=bad, actor=None)
    assert "offer_viewed" in str(caught.value)
    assert "Not a valid JSON Schema" in str(caught.value)
    with environment_scope(env):
        assert not DataPlanVersion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ref",
    [
        "#/$defs/offer",  # a valid keyword naming a definition the schema lacks
        "https://schemas.example.com/offer.json",  # never fetched: nothing outside is read
        "offer.json",
    ],
)
def test_plan__schema_ref_that_does_not_resolve_within_it__is_refused_naming_the_event(tenant, ref):
    env = tenant.staging
    bad = {"offer_viewed": {"description": "x", "schema": {"$ref": ref}}}
    with environment_scope(env), pytest.raises(ValidationError) as caught:
        data_plan_version_create(environment=env, points=bad, actor=None)
    assert "offer_viewed" in str(caught.value)
    assert ref in str(caught.value)
    with environment_scope(env):
        assert not DataPlanVersion.objects.exists()


@pytest.mark.django_db
def test_plan__refs_within_the_schema__are_accepted_and_applied(tenant):
    env = tenant.production
    schema = {
        "$defs": {"kind": {"enum": ["heloc", "refi"]}},
        "type": "object",
        "properties": {"offer_kind": {"$ref": "#/$defs/kind"}},
    }
    with environment_scope(env):
        data_plan_version_create(
            environment=env,
            points={"offer_viewed": {"description": "x", "schema": schema}},
            actor=None,
        )
        result = events_ingest(
            environment=env,
            events=[
                {"name": "offer_viewed", "properties": {"offer_kind": "heloc"}},
                {"name": "offer_viewed", "properties": {"offer_kind": "car"}},
            ],
            source="api",
        )
        statuses = list(Event.objects.order_by("pk").values_list("plan_status", flat=True))
    assert len(result.rows) == 2
    assert statuses == [Event.PlanStatus.PLANNED, Event.PlanStatus.INVALID]


DANGLING = {"$ref": "#/$defs/offer"}  # a valid JSON Schema keyword, naming nothing


@pytest.mark.django_db
def test_offer_page__plan_in_force_has_a_dangling_ref__page_answers_and_event_is_kept(member):
    """With such a plan in force (a release writes plan rows as they are), opening an offer
    still shows the page, and the view event is recorded, marked invalid against the plan."""
    env = member.environment
    _, (product,) = _home(member, offers=1)
    DataPlanVersionFactory(
        environment=env,
        points={"offer_viewed": {"description": "An offer was opened.", "schema": DANGLING}},
    )
    client = member_client(member)
    client.raise_request_exception = False
    response = client.get(f"/offers/{product.pk}/")
    assert response.status_code == 200
    with environment_scope(env):
        event = Event.objects.get(name="offer_viewed", member=member)
    assert event.plan_status == Event.PlanStatus.INVALID
    assert "cannot be applied" in event.violations[0]


@pytest.mark.django_db
def test_ingest__plan_in_force_has_a_dangling_ref__rows_answered_not_a_crash(tenant):
    env = tenant.production
    member = MemberFactory(environment=env)
    DataPlanVersionFactory(
        environment=env,
        invalid="allow",
        points={"offer_viewed": {"description": "An offer was opened.", "schema": DANGLING}},
    )
    with environment_scope(env):
        result = events_ingest(
            environment=env,
            events=[{"name": "offer_viewed", "member_id": member.pk, "properties": {}}],
            source="api",
        )
        event = Event.objects.get()
    assert len(result.rows) == 1
    assert (event.plan_status, event.disposition) == (
        Event.PlanStatus.INVALID,
        Event.Disposition.ACCEPTED,
    )


@pytest.mark.django_db
def test_plan__new_version__applies_to_the_next_event(tenant, plan):
    env = tenant.production
    with environment_scope(env):
        assert events_ingest(environment=env, events=[{"name": "later_event"}]).quarantined == 1
        points = {**demo_plan_points(), "later_event": {"description": "x", "schema": {}}}
        v2 = data_plan_version_create(environment=env, points=points, actor=None)
        result = events_ingest(environment=env, events=[{"name": "later_event"}])
    assert v2.version == plan.version + 1
    assert result.rows[0].plan_status == "planned"


@pytest.mark.django_db
def test_ingest__batch_with_bad_rows__stores_good_rows_and_names_bad_ones(tenant, plan):
    env = tenant.production
    MemberFactory(environment=env, is_test=True, external_id="CORE-1")
    other_env_member = MemberFactory(environment=tenant.staging)
    batch = [
        {
            "name": "offer_viewed",
            "member_external_id": "CORE-1",
            "properties": OFFER,
            "is_test": False,
        },
        "not an object",
        {"name": "Bad Name!"},
        {"name": "offer_viewed", "member_id": other_env_member.pk, "properties": OFFER},
        {"name": "offer_viewed", "properties": [1, 2]},
        {"name": "offer_viewed", "properties": OFFER, "occurred_at": "yesterday"},
        {"name": "offer_viewed", "member_id": [1], "properties": OFFER},
        {"name": "offer_viewed", "properties": {"offer_id": "a\u0000b", "offer_kind": "heloc"}},
    ]
    with environment_scope(env):
        result = events_ingest(environment=env, events=batch, source="api")
        stored = list(Event.objects.all())
    assert result.accepted == 1
    assert [r.index for r in result.rejected] == [1, 2, 3, 4, 5, 6, 7]
    assert "NUL" in result.rejected[6].errors[0]
    assert "member_id" in result.rejected[2].errors[0]
    assert "occurred_at" in result.rejected[4].errors[0]
    assert len(stored) == 1
    assert stored[0].is_test is True  # from the member, not from the client's "is_test"
    assert stored[0].source == "api"


@pytest.mark.django_db
def test_ingest__an_erased_member__unknown_and_nothing_linked_to_the_tombstone(tenant, plan):
    from homes.services.erasure import member_erase

    env = tenant.production
    gone = MemberFactory(environment=env, external_id="CORE-9")
    with environment_scope(env):
        member_erase(environment=env, member=gone, actor_label="test")
        result = events_ingest(
            environment=env,
            events=[
                {"name": "offer_viewed", "member_id": gone.pk, "properties": OFFER},
                {"name": "offer_viewed", "member_external_id": "CORE-9", "properties": OFFER},
            ],
            source="api",
        )
        assert not Event.objects.filter(member_id=gone.pk).exists()
    assert result.accepted == 0
    assert [r.index for r in result.rejected] == [0, 1]
    assert "member_id" in result.rejected[0].errors[0]


@pytest.mark.django_db
def test_ingest__member_id_and_external_id_must_name_the_same_member(tenant, plan):
    env = tenant.production
    ann = MemberFactory(environment=env, external_id="CORE-1")
    bob = MemberFactory(environment=env, external_id="CORE-2")
    rows = [
        {"name": "offer_viewed", "member_id": ann.pk, "member_external_id": "CORE-2"},
        {"name": "offer_viewed", "member_id": ann.pk, "member_external_id": "CORE-404"},
        {"name": "offer_viewed", "member_id": bob.pk, "member_external_id": "CORE-2"},
    ]
    with environment_scope(env):
        result = events_ingest(
            environment=env, events=[{**r, "properties": OFFER} for r in rows], source="api"
        )
        stored = list(Event.objects.values_list("member_id", flat=True))
    assert [r.index for r in result.rejected] == [0, 1]
    assert "another member" in result.rejected[0].errors[0]
    assert "CORE-404" in result.rejected[1].errors[0]
    assert stored == [bob.pk]


@pytest.mark.django_db
def test_ingest__more_than_a_thousand__is_refused_whole(tenant):
    env = tenant.production
    with environment_scope(env), pytest.raises(ValidationError, match="1,000"):
        events_ingest(environment=env, events=[{"name": "x"}] * 1001)


def _consenting(member, granted=True):
    with environment_scope(member.environment):
        analytics_consent_set(environment=member.environment, member=member, granted=granted)
    return member


def _beacon(client, env, body, **headers):
    origin = headers.pop("origin", f"http://{env.host}")
    return client.post(
        "/events/beacon/",
        data=body if isinstance(body, (str, bytes)) else json.dumps(body),
        content_type=headers.pop("content_type", "application/json"),
        HTTP_ORIGIN=origin,
        **headers,
    )


@pytest.mark.django_db
def test_beacon__same_origin_member__records_web_events_for_that_member(tenant, plan):
    env = tenant.production
    tester = _consenting(MemberFactory(environment=env, is_test=True))
    client = member_client(tester)
    response = _beacon(
        client,
        env,
        {"events": [{"name": "page_viewed", "properties": {}, "member_id": 999999}]},
    )
    assert response.status_code == 202, response.content
    with environment_scope(env):
        event = Event.objects.get()
    assert (event.source, event.member_id, event.is_test) == ("web", tester.pk, True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("{not json", {}, 400),
        ({"events": "nope"}, {}, 400),
        ({"events": [{"name": "x"}] * 21}, {}, 400),
        ({"events": [{"name": "x", "properties": {"p": "a" * 20000}}]}, {}, 413),
        ({"events": [{"name": "x"}]}, {"origin": "https://evil.example"}, 403),
        ({"events": [{"name": "x"}]}, {"HTTP_SEC_FETCH_SITE": "cross-site"}, 403),
        ("name=x", {"content_type": "application/x-www-form-urlencoded"}, 415),
        # 10 KB of nested arrays, under the size limit but deeper than the parser follows
        ('{"events": ' + "[" * 5000 + "]" * 5000 + "}", {}, 400),
    ],
)
def test_beacon__bad_input__answers_clearly_and_stores_nothing(tenant, body, headers, status):
    env = tenant.production
    client = member_client(_consenting(MemberFactory(environment=env)))
    response = _beacon(client, env, body, **headers)
    assert response.status_code == status
    assert "error" in response.json()
    with environment_scope(env):
        assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(events.SERVER_EVENTS))
def test_beacon__an_event_the_platform_records__refused_and_nothing_stored(tenant, name):
    env = tenant.production
    client = member_client(_consenting(MemberFactory(environment=env)))
    forged = {"name": name, "properties": {"offer_id": 99, "offer_kind": "heloc"}}
    response = _beacon(client, env, {"events": [{"name": "page_viewed"}, *[forged] * 20][:20]})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{name}: recorded by the platform itself")
    with environment_scope(env):
        assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("granted", [None, False])
def test_beacon__member_without_analytics_consent__refused_and_nothing_stored(tenant, granted):
    env = tenant.production
    member = MemberFactory(environment=env)
    if granted is not None:
        _consenting(member, granted=granted)
    response = _beacon(member_client(member), env, {"events": [{"name": "page_viewed"}]})
    assert response.status_code == 403
    assert response.json()["consent"] is False
    with environment_scope(env):
        assert not Event.objects.exists()


@pytest.mark.django_db
def test_beacon__signed_out__answers_401(tenant):
    from django.test import Client

    env = tenant.production
    response = _beacon(Client(HTTP_HOST=env.host), env, {"events": [{"name": "x"}]})
    assert response.status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db
def test_ingest__large_batch_on_postgresql__copies_rows_with_their_ids(tenant, plan):
    from tests.services import require_postgres

    require_postgres()
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    batch = [
        {"name": "offer_viewed", "member_id": tester.pk, "properties": {**OFFER, "offer_id": i}}
        for i in range(300)
    ] + [{"name": "offer_viewed", "properties": {"offer_id": 1}}]
    with environment_scope(env):
        result = events_ingest(environment=env, events=batch)
        stored = {e.pk: e for e in Event.objects.all()}
    assert result.accepted == 300
    assert result.quarantined == 1
    assert len(stored) == 301
    row = result.rows[5]
    assert stored[row.event_id].properties["offer_id"] == 5
    assert stored[row.event_id].is_test is True
    assert stored[result.rows[300].event_id].violations == row.errors + result.rows[300].errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sink__page_view_on_postgresql__committed_without_waiting_for_the_flush(tenant, plan):
    from django.db import connection

    from tests.services import require_postgres

    require_postgres()
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    with CaptureQueriesContext(connection) as queries:
        events.emit(
            environment=env,
            name="offer_viewed",
            member=tester,
            properties=OFFER,
            sync_commit=False,
        )
    # One statement, its own transaction: the setting does not outlive it.
    (insert,) = [q["sql"] for q in queries if "flags_event" in q["sql"]]
    assert "set_config('synchronous_commit', 'off', true)" in insert
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    with environment_scope(env):
        event = Event.objects.get()
    assert (event.name, event.member_id, event.is_test) == ("offer_viewed", tester.pk, True)
    assert (event.properties, event.plan_status, event.plan_version) == (
        OFFER,
        "planned",
        plan.version,
    )
    assert (event.source, event.violations, event.disposition) == ("server", [], "accepted")


@pytest.mark.django_db
def test_sink__page_view_inside_a_transaction__committed_with_it(tenant, plan):
    from django.db import connection, transaction

    env = tenant.production
    member = MemberFactory(environment=env)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        events.emit(environment=env, name="dashboard_viewed", member=member, sync_commit=False)
    assert not any("synchronous_commit" in q["sql"] for q in queries)
    with environment_scope(env):
        assert Event.objects.filter(name="dashboard_viewed", member=member).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_record_many__large_batch_by_copy__events_carry_the_ids_and_values_stored(tenant, plan):
    from flags.services.events import event_record_many
    from tests.services import require_postgres

    require_postgres()
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    rows = [
        {"name": "offer_viewed", "member": tester, "properties": {"offer_id": i}} for i in range(59)
    ] + [{"name": "never_planned", "member": tester, "properties": {"x": "é"}}]
    with environment_scope(env):
        recorded = event_record_many(environment=env, rows=rows, source="server")
        stored = {e.pk: e for e in Event.objects.filter(source="server")}

    assert len(recorded) == len(stored) == 60
    for event in recorded:
        again = stored[event.pk]
        assert not event._state.adding
        assert (again.name, again.member_id, again.is_test) == (event.name, tester.pk, True)
        assert (again.properties, again.violations) == (event.properties, event.violations)
        assert (again.plan_status, again.disposition) == (event.plan_status, event.disposition)
        assert (again.occurred_at, again.received_at) == (event.occurred_at, event.received_at)
    assert [stored[e.pk].properties for e in recorded[:2]] == [{"offer_id": 0}, {"offer_id": 1}]
    assert stored[recorded[-1].pk].plan_status == "unplanned"
    assert stored[recorded[-1].pk].disposition == "quarantined"
