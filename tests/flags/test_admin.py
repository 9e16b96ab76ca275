"""The admin: flags, the kill switch, plans, dashboards, destinations, test plans."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from flags.defaults import default_test_plan
from flags.models import (
    DataPlanVersion,
    Destination,
    DestinationBatch,
    Flag,
    Rollout,
    TestPlan,
    TestPlanRun,
)
from institutions import events
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import staff_client
from tests.factories import MemberFactory, staff_user
from tests.flags.factories import (
    DestinationBatchFactory,
    DestinationFactory,
    FlagFactory,
    OracleRuleFactory,
    PlanFactory,
    PlanRunFactory,
)

OFFER = {"offer_id": 7, "offer_kind": "heloc"}


@pytest.mark.django_db
def test_flag_list__declared_without_row_and_stale_rows__are_shown(tenant):
    FlagFactory(environment=tenant.staging, name="offer_card_v2")
    FlagFactory(environment=tenant.staging, name="forgotten_experiment")
    client = staff_client(staff_user(tenant.institution, "admin"), tenant.staging)
    page = client.get(reverse("admin:flags_flag_changelist")).content.decode()
    missing = page.split('id="missing-flags"')[1].split("</div>")[0]
    stale = page.split('id="stale-flags"')[1].split("</div>")[0]
    assert "dashboard_equity_widget" in missing
    assert "offer_card_v2" not in missing
    assert "forgotten_experiment" in stale


@pytest.mark.django_db
def test_kill_switch_page__production_admin__kills_with_reason_and_marketing_cannot(tenant):
    flag = FlagFactory(environment=tenant.production, name="offer_card_v2", everyone=True)
    url = reverse("admin:flags_flag_kill", args=[flag.pk])
    marketing = staff_client(staff_user(tenant.institution, "marketing"), tenant.production)
    marketing.post(url, {"reason": "looks odd"})
    assert Flag._base_manager.filter(pk=flag.pk).values_list("killed", flat=True).get() is False
    admin = staff_client(staff_user(tenant.institution, "admin"), tenant.production)
    change = admin.post(reverse("admin:flags_flag_change", args=[flag.pk]), {"name": "x"})
    assert change.status_code == 403  # production flags change by release
    response = admin.post(url, {"reason": "5xx on the offer page"})
    assert response.status_code == 302
    assert Flag._base_manager.filter(pk=flag.pk).values_list("killed", flat=True).get() is True
    assert AuditEntry.objects.filter(reason="5xx on the offer page").exists()


@pytest.mark.django_db
def test_data_plan_admin__invalid_schema__shows_the_error_and_saves_nothing(tenant):
    client = staff_client(staff_user(tenant.institution, "admin"), tenant.staging)
    points = {"offer_viewed": {"description": "x", "schema": {"type": 12}}}
    response = client.post(
        reverse("admin:flags_dataplanversion_add"),
        {
            "description": "v",
            "points": json.dumps(points),
            "unplanned": "allow",
            "invalid": "quarantine",
        },
    )
    assert response.status_code == 200
    assert "Not a valid JSON Schema" in response.content.decode()
    with environment_scope(tenant.staging):
        assert not DataPlanVersion.objects.exists()


@pytest.mark.django_db
def test_dashboard__engagement_and_variants__exclude_test_members_unless_asked(tenant):
    env = tenant.production
    real, tester = MemberFactory(environment=env), MemberFactory(environment=env, is_test=True)
    for member in (real, tester):
        events.emit(environment=env, name="dashboard_viewed", member=member)
        events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
        events.emit(
            environment=env,
            name="flag_impression",
            member=member,
            properties={"flag": "dashboard_equity_widget", "variant": "off"},
        )
    events.emit(environment=env, name="offer_selected", member=tester, properties=OFFER)
    client = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:flags_dashboard")
    without = client.get(url)
    assert without.status_code == 200
    assert "<svg" in without.content.decode()
    offers = without.context["offers"]
    assert (offers[0]["views"], offers[0]["selections"]) == (1, 0)
    assert [(v["variant"], v["members"]) for v in without.context["variants"]] == [("off", 1)]
    with_test = client.get(url, {"include_test": "1"}).context
    assert (with_test["offers"][0]["views"], with_test["offers"][0]["selections"]) == (2, 1)
    variant = with_test["variants"][0]
    assert (variant["members"], variant["converted"]) == (2, 1)
    assert 0 < variant["low"] < 0.5 < variant["high"] < 1


def _emit_before(now, env, name, member, minutes, properties=OFFER) -> None:
    """An event of `member` that occurred `minutes` before `now`."""
    events.emit(
        environment=env,
        name=name,
        member=member,
        properties=properties,
        occurred_at=now - timedelta(minutes=minutes),
    )


@pytest.mark.django_db
def test_variant_comparison__conversion_before_the_first_impression__is_not_counted(tenant):
    from flags import selectors

    env = tenant.production
    early, late = MemberFactory(environment=env), MemberFactory(environment=env)
    now = timezone.now()
    impression = {"flag": "dashboard_equity_widget", "variant": "on"}
    for member in (early, late):
        _emit_before(now, env, "flag_impression", member, 30, impression)
    # `early` selected before it ever saw the variant; `late` after.
    _emit_before(now, env, "offer_selected", early, 40)
    _emit_before(now, env, "offer_selected", late, 10)
    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    with environment_scope(env):
        [variant] = selectors.variant_comparison(
            env, "dashboard_equity_widget", start, end, include_test=False
        )
    assert (variant["variant"], variant["members"], variant["converted"]) == ("on", 2, 1)
    assert variant["rate"] == 0.5


@pytest.mark.django_db
def test_offer_engagement__rate_is_members_who_selected_after_viewing__never_above_one(tenant):
    from flags import selectors

    env = tenant.production
    reloader, returning, direct = (MemberFactory(environment=env) for _ in range(3))
    now = timezone.now()

    def emit(name, member, minutes_ago):
        _emit_before(now, env, name, member, minutes_ago)

    # Three views, one selection: one member of one who viewed.
    for minutes_ago in (50, 40, 30):
        emit("offer_viewed", reloader, minutes_ago)
    emit("offer_selected", reloader, 20)
    # Viewed before the window, selected in it: no view in the window to count against.
    emit("offer_viewed", returning, 120)
    emit("offer_selected", returning, 15)
    # Selected, then viewed the offer again: the selection came before any view here.
    emit("offer_selected", direct, 25)
    emit("offer_viewed", direct, 5)
    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    with environment_scope(env):
        [offer] = selectors.offer_engagement(env, start, end, include_test=False)
    assert (offer["views"], offer["selections"]) == (4, 3)
    assert (offer["viewers"], offer["selectors"]) == (2, 1)
    assert offer["rate"] == 0.5
    assert 0 < offer["low"] < 0.5 < offer["high"] < 1


@pytest.mark.django_db(transaction=True)
def test_test_plan_admin_action__runs_and_shows_the_verdict(tenant, live_server, monkeypatch):
    from flags.services import testplans

    env = tenant.staging
    plan = PlanFactory(environment=env, max_requests=5)
    address = live_server.url.replace("http://localhost", "127.0.0.1")
    real_run = testplans.run_test_plan
    monkeypatch.setattr(
        "flags.admin.testplans.run_test_plan",
        lambda **kw: real_run(**kw, address=address, settle_seconds=0),
    )
    client = staff_client(staff_user(tenant.institution, "it"), env)
    response = client.post(
        reverse("admin:flags_testplan_changelist"),
        {"action": "run_plan", "_selected_action": [plan.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "INCONCLUSIVE after 5 requests" in text  # 5 requests are below the minimum sample
    with environment_scope(env):
        run = TestPlanRun.objects.get()
    assert run.requests_sent == 5
    detail = client.get(reverse("admin:flags_testplanrun_change", args=[run.pk]))
    assert "below the minimum 100" in detail.content.decode()


@pytest.mark.django_db
def test_dashboard__delivery_failures__charted_per_hour_with_counts_test_members_excluded(tenant):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.models import Delivery
    from tests.notifications.factories import DeliveryFactory

    env = tenant.production
    real, tester = MemberFactory(environment=env), MemberFactory(environment=env, is_test=True)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    # Two hours ago: 4 sent, 1 failed (real members); test members' failures besides.
    plan = [
        (hour - timedelta(hours=2), real, "sent", 4),
        (hour - timedelta(hours=2), real, "failed", 1),
        (hour - timedelta(hours=1), real, "dead", 2),
        (hour - timedelta(hours=1), real, "sent", 2),
        (hour - timedelta(hours=1), tester, "failed", 6),
    ]
    with environment_scope(env):
        for at, member, state, count in plan:
            rows = DeliveryFactory.create_batch(count, environment=env, member=member)
            finished = at + timedelta(minutes=10)  # sent rows count by sent_at
            Delivery.objects.filter(pk__in=[r.pk for r in rows]).update(
                state=state, updated_at=finished, sent_at=finished if state == "sent" else None
            )
    client = staff_client(staff_user(tenant.institution, "it"), env)
    url = reverse("admin:flags_dashboard")
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "3 of 9 finished deliveries failed or went dead, 33.3%" in text
    assert 'aria-label="Delivery failure rate"' in text
    assert 'aria-label="Failed or dead deliveries"' in text
    busy = [(p["failed"], p["finished"]) for p in page.context["delivery_points"] if p["finished"]]
    assert busy == [(1, 5), (2, 4)]
    with_test = client.get(url, {"include_test": "1"})
    assert "9 of 15 finished deliveries failed or went dead, 60.0%" in with_test.content.decode()


@pytest.mark.django_db
def test_flag_admin__changing_only_the_named_members__is_in_the_audit_trail(tenant):
    env = tenant.staging
    flag = FlagFactory(environment=env, name="offer_card_v2")
    member = MemberFactory(environment=env)
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    response = client.post(
        reverse("admin:flags_flag_change", args=[flag.pk]),
        {"name": flag.name, "note": flag.note, "everyone": "unknown", "members": [member.pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with environment_scope(env):
        assert list(Flag.objects.get(pk=flag.pk).members.all()) == [member]
    entry = AuditEntry.objects.get(object_type="flags.Flag", object_id=str(flag.pk))
    assert entry.changes["members"] == {"before": [], "after": [member.pk]}


@pytest.mark.django_db
def test_flag_admin__new_flag_with_named_members__one_audit_entry_names_them(tenant):
    env = tenant.staging
    member = MemberFactory(environment=env)
    client = staff_client(staff_user(tenant.institution, "marketing"), env)
    response = client.post(
        reverse("admin:flags_flag_add"),
        {"name": "offer_card_v2", "note": "n", "everyone": "unknown", "members": [member.pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with environment_scope(env):
        flag = Flag.objects.get(name="offer_card_v2")
        assert list(flag.members.all()) == [member]
    entry = AuditEntry.objects.get(object_type="flags.Flag", object_id=str(flag.pk))
    assert entry.changes["members"] == {"before": None, "after": [member.pk]}


@pytest.mark.django_db
def test_rollout_form__nan_infinite_or_boolean_step__is_a_form_error_not_a_500(tenant):
    env = tenant.staging
    flag = FlagFactory(environment=env, name="offer_card_v2")
    client = staff_client(staff_user(tenant.institution, "it"), env)
    client.raise_request_exception = False  # a 500 answers as a browser would see it
    url = reverse("admin:flags_flag_rollout", args=[flag.pk])
    for step, shown in (("NaN", "nan"), ("Infinity", "inf"), ("true", "True")):
        response = client.post(
            url,
            {"steps": f'["test", {step}, "everyone"]', "step_minutes": "60", "rule_group": "r"},
        )
        assert response.status_code == 200
        assert shown in str(response.context["form"].errors["steps"])
    with environment_scope(env):
        assert not Rollout.objects.exists()


def _off_with_a_dead_letter(env, state):
    destination = DestinationFactory(environment=env, enabled=False, state=state)
    DestinationBatchFactory(
        environment=env, destination=destination, status=DestinationBatch.Status.DEAD
    )
    return destination


@pytest.mark.django_db
def test_destination_reenable_action__lending_staff__cannot_turn_a_destination_back_on(tenant):
    env = tenant.staging
    destination = _off_with_a_dead_letter(env, Destination.State.DISABLED)
    lending = staff_client(staff_user(tenant.institution, "lending"), env)
    url = reverse("admin:flags_destination_changelist")
    assert 'value="reenable"' not in lending.get(url).content.decode()
    lending.post(url, {"action": "reenable", "_selected_action": [destination.pk]})
    with environment_scope(env):
        destination.refresh_from_db()
        assert destination.enabled is False
        assert destination.state == Destination.State.DISABLED
        assert DestinationBatch.objects.get().status == DestinationBatch.Status.DEAD
    assert not AuditEntry.objects.filter(object_type="flags.Destination").exists()


@pytest.mark.django_db
def test_destination_reenable_action__it_staff_in_staging__turns_it_on_and_audits_the_change(
    tenant,
):
    env = tenant.staging
    destination = _off_with_a_dead_letter(env, Destination.State.FAILING)
    it = staff_client(staff_user(tenant.institution, "it"), env)
    it.post(
        reverse("admin:flags_destination_changelist"),
        {"action": "reenable", "_selected_action": [destination.pk]},
    )
    with environment_scope(env):
        destination.refresh_from_db()
        assert (destination.enabled, destination.state) == (True, Destination.State.ACTIVE)
        assert DestinationBatch.objects.get().status == DestinationBatch.Status.PENDING
    entry = AuditEntry.objects.get(object_type="flags.Destination")
    assert entry.changes == {
        "enabled": {"before": False, "after": True},
        "state": {"before": "failing", "after": "active"},
    }


def _changelist_queries(client, url) -> int:
    client.get(url)  # warm the per-process caches (session, roles, branding)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_destination_changelist__queries_do_not_grow_with_destinations(tenant):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "it"), env)
    url = reverse("admin:flags_destination_changelist")
    DestinationFactory(environment=env)
    one = _changelist_queries(client, url)
    for status in ("pending", "pending", "dead", "sent", "dead"):
        batch = DestinationBatchFactory(environment=env, status=status)
        DestinationBatchFactory(environment=env, destination=batch.destination, status="pending")
    six = _changelist_queries(client, url)
    assert six == one, f"{one} queries for 1 destination, {six} for 6"
    with environment_scope(env):
        shown = {
            d.pk: (d.pending_batches, d.dead_batches)
            for d in client.get(url).context["cl"].result_list
        }
        expected = {
            d.pk: (
                d.batches.filter(status="pending").count(),
                d.batches.filter(status="dead").count(),
            )
            for d in Destination.objects.all()
        }
    assert shown == expected


@pytest.mark.django_db
def test_test_plan_changelist__queries_do_not_grow_with_plans(tenant):
    env = tenant.staging
    client = staff_client(staff_user(tenant.institution, "it"), env)
    url = reverse("admin:flags_testplan_changelist")
    PlanFactory(environment=env)
    one = _changelist_queries(client, url)
    hour_ago = timezone.now() - timedelta(hours=1)
    for _ in range(5):
        plan = PlanFactory(environment=env)
        PlanRunFactory(environment=env, plan=plan, verdict="fail", started_at=hour_ago)
        PlanRunFactory(environment=env, plan=plan, verdict="pass")
    six = _changelist_queries(client, url)
    assert six == one, f"{one} queries for 1 plan, {six} for 6"
    page = client.get(url).content.decode()
    assert page.count('<td class="field-last_verdict">pass (') == 5
    assert "fail (" not in page


@pytest.mark.parametrize(("where", "role"), [("production", "admin"), ("staging", "marketing")])
def test_oracle_rule_admin__opened_where_read_only__shows_the_rule(tenant, where, role):
    """In production oracle rules come by release, and in staging marketing may only look:
    the form is read-only there, and opening a rule answered 500 (the metric's help text was
    set on a field the form did not have)."""
    environment = getattr(tenant, where)
    with environment_scope(environment):
        rule = OracleRuleFactory(environment=environment, name="checkout errors")
    client = staff_client(staff_user(tenant.institution, role), environment)
    response = client.get(reverse("admin:flags_oraclerule_change", args=[rule.pk]))
    assert response.status_code == 200
    assert "checkout errors" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "where"), [("marketing", "staging"), ("lending", "production")])
def test_destination_page__role_that_may_only_look__shows_whether_a_secret_is_set_not_it(
    tenant, role, where
):
    """A role without the change permission sees every field as text: never the webhook
    signing secret, with which anyone could sign deliveries to the endpoint."""
    environment = tenant.env(where)
    destination = DestinationFactory(environment=environment, secret="webhook-secret-91c2")
    client = staff_client(staff_user(tenant.institution, role), environment)
    page = client.get(reverse("admin:flags_destination_change", args=[destination.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "webhook-secret-91c2" not in text
    assert "Signing secret" in text
    assert "Set" in text
    # Those who may change it get a field that never shows the stored value either.
    it = staff_client(staff_user(tenant.institution, "it"), environment)
    page = it.get(reverse("admin:flags_destination_change", args=[destination.pk]))
    assert 'name="secret"' in page.content.decode()
    assert "webhook-secret-91c2" not in page.content.decode()


@pytest.mark.django_db
def test_data_plan_admin__schema_ref_to_a_missing_definition__is_a_form_error(tenant):
    client = staff_client(staff_user(tenant.institution, "marketing"), tenant.staging)
    points = {"offer_viewed": {"description": "x", "schema": {"$ref": "#/$defs/offer"}}}
    response = client.post(
        reverse("admin:flags_dataplanversion_add"),
        {
            "description": "offers",
            "points": json.dumps(points),
            "unplanned": "allow",
            "invalid": "quarantine",
        },
    )
    assert response.status_code == 200
    assert "offer_viewed" in str(response.context["adminform"].form.errors["points"])
    with environment_scope(tenant.staging):
        assert not DataPlanVersion.objects.exists()


def _destination_form(**changes) -> dict:
    return {
        "name": "crm",
        "kind": "webhook",
        "enabled": "on",
        "url": "https://hooks.example.com/chimney",
        "secret": "signing-secret",
        "timeout_seconds": "5",
        "exclude_test_members": "on",
        "allow_events": "[]",
        "deny_events": "[]",
        "rules": "[]",
        **changes,
    }


def _test_plan_form(**changes) -> dict:
    return {
        "name": "smoke",
        "description": "",
        "requests": '[{"method": "GET", "path": "/"}]',
        "mutation": "{}",
        "attack_sets": "{}",
        "max_requests": "10",
        "seed": "1",
        "rule_group": "test-plan:default",
        **changes,
    }


def _staging_admin(tenant):
    client = staff_client(staff_user(tenant.institution, "admin"), tenant.staging)
    client.raise_request_exception = False  # a 500 answers as a browser would see it
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["allow_events", "deny_events", "rules"])
def test_destination_admin__optional_list_box_left_empty__saved_as_no_list(tenant, field):
    response = _staging_admin(tenant).post(
        reverse("admin:flags_destination_add"), _destination_form(**{field: ""})
    )
    assert response.status_code == 302
    with environment_scope(tenant.staging):
        assert getattr(Destination.objects.get(), field) == []


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["mutation", "attack_sets"])
def test_test_plan_admin__optional_json_box_left_empty__saved_empty(tenant, field):
    response = _staging_admin(tenant).post(
        reverse("admin:flags_testplan_add"), _test_plan_form(**{field: ""})
    )
    assert response.status_code == 302
    with environment_scope(tenant.staging):
        assert getattr(TestPlan.objects.get(), field) == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allow_events", "5"),
        ("allow_events", '["offer_viewed", 7]'),
        ("deny_events", "true"),
        ("rules", '[{"property": "offer_kind", "op": "in", "value": 5}]'),
        ("rules", '[{"property": "offer_kind", "op": "not_in", "value": "heloc"}]'),
        ("rules", '[{"property": 5, "op": "eq", "value": 5}]'),
    ],
)
def test_destination_admin__filter_of_the_wrong_shape__form_error_nothing_saved(
    tenant, field, value
):
    """Filters the forwarder cannot apply are refused where they are typed: saved, every
    forwarding run would fail on them."""
    response = _staging_admin(tenant).post(
        reverse("admin:flags_destination_add"), _destination_form(**{field: value})
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    with environment_scope(tenant.staging):
        assert not Destination.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mutation", '{"max_attacks": "many"}'),
        ("mutation", "[1]"),
        ("mutation", '{"max_attacks": 2, "parts": ["path"]}'),
        ("mutation", '{"parts": {"path": {"probability": "often"}}}'),
        ("mutation", '{"parts": {"fragment": {"max_attacks": 1}}}'),
        ("attack_sets", '{"values": "x"}'),
        ("attack_sets", "[]"),
    ],
)
def test_test_plan_admin__mutation_the_runner_cannot_read__form_error_nothing_saved(
    tenant, field, value
):
    """Refused by the form, so "Run the test plan" never meets it."""
    response = _staging_admin(tenant).post(
        reverse("admin:flags_testplan_add"), _test_plan_form(**{field: value})
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    with environment_scope(tenant.staging):
        assert not TestPlan.objects.exists()


@pytest.mark.django_db
def test_test_plan_admin__the_default_plan__is_accepted(tenant):
    plan = default_test_plan()
    response = _staging_admin(tenant).post(
        reverse("admin:flags_testplan_add"),
        _test_plan_form(
            mutation=json.dumps(plan["mutation"]), attack_sets=json.dumps(plan["attack_sets"])
        ),
    )
    assert response.status_code == 302
