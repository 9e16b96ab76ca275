"""Flags per environment: targeting, deterministic buckets, waffle's API, one cache read."""

from __future__ import annotations

import pytest
import waffle
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from flags import evaluation, registry
from flags.models import Event, Flag
from flags.services.flags import flag_kill, flag_revive, flag_save
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory, staff_user
from tests.flags.factories import FlagFactory


def member_request(member, *, staff_visit=False):
    request = RequestFactory().get("/", HTTP_HOST=member.environment.host)
    request.environment = member.environment
    request.member = member
    request.session = {"chimney_member_visited_by": 1} if staff_visit else {}
    return request


def active(member, name, **kwargs):
    with environment_scope(member.environment):
        return waffle.flag_is_active(member_request(member, **kwargs), name)


@pytest.mark.django_db
def test_flag_targeting__each_rule__answers_for_the_member(tenant):
    env = tenant.production
    real = MemberFactory(environment=env)
    tester = MemberFactory(environment=env, is_test=True)
    named = MemberFactory(environment=env)
    FlagFactory(environment=env, name="for_tests", test_cohort=True)
    FlagFactory(environment=env, name="for_all", everyone=True)
    FlagFactory(environment=env, name="for_none", everyone=False, test_cohort=True)
    FlagFactory(environment=env, name="for_staff", staff=True)
    with environment_scope(env):
        Flag.objects.get(name="for_tests").members.add(named)
    assert active(tester, "for_tests")
    assert not active(real, "for_tests")
    assert active(named, "for_tests")
    assert active(real, "for_all")
    assert not active(tester, "for_none")
    assert active(real, "for_staff", staff_visit=True)
    assert not active(real, "for_staff")
    assert not active(real, "nobody_declared_this")


@pytest.mark.django_db
def test_flag_percent__same_member__same_answer_everywhere_and_near_the_share(tenant):
    env = tenant.production
    FlagFactory(environment=env, name="half", percent=30)
    members = [MemberFactory(environment=env) for _ in range(300)]
    first = [active(m, "half") for m in members]
    # Another request (another device, another process): the same answers, no cookie.
    evaluation.cache.clear()
    again = [active(m, "half") for m in members]
    assert first == again
    assert 0.2 < sum(first) / len(first) < 0.4
    bucket = evaluation.bucket(env.pk, "half", members[0].pk)
    assert bucket == evaluation.bucket(env.pk, "half", members[0].pk)
    other = [evaluation.bucket(env.pk, "other_flag", m.pk) for m in members[:20]]
    assert other != [evaluation.bucket(env.pk, "half", m.pk) for m in members[:20]]


@pytest.mark.django_db
def test_flag_cache__two_environments_same_name__keep_their_own_answers(tenant):
    FlagFactory(environment=tenant.production, name="widget", everyone=True)
    FlagFactory(environment=tenant.staging, name="widget", everyone=False)
    assert active(MemberFactory(environment=tenant.production), "widget") is True
    assert active(MemberFactory(environment=tenant.staging), "widget") is False
    assert evaluation.snapshot_key(tenant.production.pk) != evaluation.snapshot_key(
        tenant.staging.pk
    )


def _ten_flags_twice(env, member):
    with environment_scope(env):
        request = member_request(member)
        with CaptureQueriesContext(connection) as queries:
            answers = [waffle.flag_is_active(request, f"f{i}") for i in range(10)]
            answers += [waffle.flag_is_active(request, f"f{i}") for i in range(10)]
            evaluation.impressions_flush(request)  # all seen today: nothing to write
    return answers, [q["sql"] for q in queries]


@pytest.mark.django_db
@pytest.mark.parametrize(("check_seconds", "round_trips"), [(0, ["get_many"]), (3600, [])])
def test_flag_evaluation__warm_cache__at_most_one_round_trip_and_no_query_for_ten_flags(
    tenant, counting_cache, settings, check_seconds, round_trips
):
    settings.FLAGS_VERSION_CHECK_SECONDS = check_seconds
    env = tenant.production
    member = MemberFactory(environment=env, is_test=True)
    for i in range(10):
        FlagFactory(environment=env, name=f"f{i}", test_cohort=bool(i % 2))
    _ten_flags_twice(env, member)  # warms the cache and records the day's impressions
    counting_cache.calls.clear()
    answers, queries = _ten_flags_twice(env, member)
    assert answers[:10] == answers[10:] == [bool(i % 2) for i in range(10)]
    # Checking the flags version on every request costs one get_many; trusting the
    # process's copy for a while costs nothing.
    assert counting_cache.calls == round_trips
    assert queries == []


@pytest.mark.django_db
def test_flag_evaluation__new_process_on_a_warm_cache__one_round_trip_no_query(
    tenant, counting_cache
):
    env = tenant.production
    member = MemberFactory(environment=env, is_test=True)
    for i in range(10):
        FlagFactory(environment=env, name=f"f{i}", test_cohort=bool(i % 2))
    _ten_flags_twice(env, member)
    evaluation.local.clear()  # what a freshly started process remembers: nothing
    counting_cache.calls.clear()
    answers, queries = _ten_flags_twice(env, member)
    assert answers[:10] == [bool(i % 2) for i in range(10)]
    assert counting_cache.calls == ["get_many"]  # version, flags and impressions at once
    assert queries == []


@pytest.mark.django_db
def test_flag_template_tag__renders_the_branch_for_the_member(tenant):
    env = tenant.production
    FlagFactory(environment=env, name="dashboard_equity_widget", test_cohort=True)
    template = Template(
        "{% load waffle_tags %}"
        "{% flag 'dashboard_equity_widget' %}WIDGET{% else %}plain{% endflag %}"
    )
    for member, expected in (
        (MemberFactory(environment=env, is_test=True), "WIDGET"),
        (MemberFactory(environment=env), "plain"),
    ):
        with environment_scope(env):
            out = template.render(Context({"request": member_request(member)}))
        assert out == expected


@pytest.mark.django_db
def test_flag_change__saved__is_seen_by_the_next_request(tenant, admin_staff):
    env = tenant.staging
    member = MemberFactory(environment=env)
    flag = FlagFactory(environment=env, name="late", everyone=False)
    assert active(member, "late") is False
    with environment_scope(env):
        flag.everyone = True
        flag_save(environment=env, flag=flag, actor=admin_staff)
    assert active(member, "late") is True


@pytest.mark.django_db
def test_flag_save__in_production__is_refused_outside_a_release(tenant, admin_staff):
    flag = FlagFactory(environment=tenant.production, name="prod_flag")
    flag.everyone = True
    with environment_scope(tenant.production), pytest.raises(ValidationError, match="release"):
        flag_save(environment=tenant.production, flag=flag, actor=admin_staff)


@pytest.mark.django_db
def test_kill_switch__admin_with_reason__turns_off_now_and_is_audited(tenant, admin_staff):
    env = tenant.production
    member = MemberFactory(environment=env)
    flag = FlagFactory(environment=env, name="risky", everyone=True)
    assert active(member, "risky") is True
    marketing = staff_user(tenant.institution, "marketing")
    with environment_scope(env):
        with pytest.raises(PermissionDenied):
            flag_kill(environment=env, flag=flag, actor=marketing, reason="no")
        with pytest.raises(ValidationError):
            flag_kill(environment=env, flag=flag, actor=admin_staff, reason="  ")
        flag_kill(environment=env, flag=flag, actor=admin_staff, reason="errors on offer page")
    assert active(member, "risky") is False
    entry = AuditEntry.objects.filter(object_type="flags.Flag", reason="errors on offer page")
    assert entry.get().changes["killed"] == {"before": False, "after": True}
    with environment_scope(env):
        flag_revive(environment=env, flag=flag, actor=admin_staff, reason="fixed in 1.2")
    assert active(member, "risky") is True


@pytest.mark.django_db
def test_impressions__evaluated_twice_a_day__recorded_once_with_is_test(tenant):
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    FlagFactory(environment=env, name="shown", test_cohort=True)
    with environment_scope(env):
        for _ in range(3):
            request = member_request(tester)
            waffle.flag_is_active(request, "shown")
            evaluation.impressions_flush(request)
        impressions = list(Event.objects.filter(name="flag_impression"))
    assert len(impressions) == 1
    assert impressions[0].properties == {"flag": "shown", "variant": "on"}
    assert impressions[0].is_test is True
    assert impressions[0].member_id == tester.pk


@pytest.mark.django_db
def test_impressions__staff_visiting_as_a_member__not_the_members_impression(tenant):
    """Staff visiting as a member who is not a test member (staging) see what staff see:
    nothing is recorded as the member's."""
    env = tenant.staging
    member = MemberFactory(environment=env)
    FlagFactory(environment=env, name="staff_preview", staff=True)
    FlagFactory(environment=env, name="for_everyone", everyone=True)
    with environment_scope(env):
        visit = member_request(member, staff_visit=True)
        assert waffle.flag_is_active(visit, "staff_preview") is True  # staff see it
        assert waffle.flag_is_active(visit, "for_everyone") is True
        assert evaluation.impressions_flush(visit) == 0
        assert not Event.objects.filter(name="flag_impression").exists()
        # The member's own visit is theirs, with the member's variant.
        own = member_request(member)
        assert waffle.flag_is_active(own, "staff_preview") is False
        assert evaluation.impressions_flush(own) == 1
        (impression,) = Event.objects.filter(name="flag_impression")
    assert (impression.member_id, impression.properties["variant"]) == (member.pk, "off")


@pytest.mark.django_db
def test_impressions__staff_visiting_as_a_test_member__recorded_unless_a_staff_rule_answered(
    tenant,
):
    """In production staff visit only as a test member, and what they see there is that
    test member's test activity (is_test), except an answer only the staff rule gave."""
    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    FlagFactory(environment=env, name="staff_preview", staff=True)
    FlagFactory(environment=env, name="test_cohort_widget", test_cohort=True)
    FlagFactory(environment=env, name="staff_and_test_cohort", staff=True, test_cohort=True)
    with environment_scope(env):
        visit = member_request(tester, staff_visit=True)
        for name in ("staff_preview", "test_cohort_widget", "staff_and_test_cohort"):
            assert waffle.flag_is_active(visit, name) is True
        assert evaluation.impressions_flush(visit) == 2
        impressions = sorted(
            (event.properties["flag"], event.properties["variant"], event.is_test)
            for event in Event.objects.filter(name="flag_impression", member=tester)
        )
    assert impressions == [
        ("staff_and_test_cohort", "on", True),
        ("test_cohort_widget", "on", True),
    ]


@pytest.mark.django_db
def test_member_page__ten_flags__renders_variants_and_records_impressions_once(tenant, settings):
    from tests.conftest import member_client

    settings.TENANT_URLCONF = "tests.flags.pages"
    env = tenant.production
    for i in range(10):
        FlagFactory(environment=env, name=f"bench_flag_{i}", test_cohort=i < 3)
    tester = MemberFactory(environment=env, is_test=True)
    client = member_client(tester)
    first = client.get("/flagged/?n=10")
    again = client.get("/flagged/?n=10")
    assert first.status_code == again.status_code == 200
    assert first.content.count(b"class='on'") == 3
    assert first.content.count(b"class='off'") == 7
    with environment_scope(env):
        impressions = Event.objects.filter(name="flag_impression", member=tester)
        assert impressions.count() == 10  # ten flags, once a day each
        assert set(impressions.values_list("is_test", flat=True)) == {True}


@pytest.mark.django_db
def test_flag_template_tag__name_in_a_variable__renders_the_branch(tenant):
    env = tenant.production
    FlagFactory(environment=env, name="offer_card_v2", test_cohort=True)
    template = Template(
        "{% load waffle_tags %}{% for n in names %}{% flag n %}[{{ n }}]{% else %}-{% endflag %}"
        "{% endfor %}"
    )
    member = MemberFactory(environment=env, is_test=True)
    with environment_scope(env):
        out = template.render(
            Context({"request": member_request(member), "names": ["offer_card_v2", "nope"]})
        )
    assert out == "[offer_card_v2]-"


def test_registry__declarations__are_named_once_with_one_line():
    assert registry.is_declared("dashboard_equity_widget")
    with pytest.raises(ValueError, match="one-line"):
        registry.declare_flag("bad_flag", "two\nlines")
    with pytest.raises(ValueError, match="lowercase"):
        registry.declare_flag("Bad Flag", "x")
    with pytest.raises(ValueError, match="already declared"):
        registry.declare_flag("dashboard_equity_widget", "something else")
