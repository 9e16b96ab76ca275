"""Scenario 2 through the admin, the evidence pack, the policy and the emergency change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from institutions.models import AuditEntry, Branding
from institutions.services import branding_update
from institutions.tenancy import environment_scope
from releases.models import Release, ReleasePolicy
from releases.services import policy_for
from releases.tasks import deploy_due
from releases.watch import rules_from_policy
from tests.conftest import make_tenant, staff_client
from tests.factories import staff_user
from tests.releases.test_release_flow import TUESDAY_23


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.django_db
def test_scenario_2__marketing_change_signed_scheduled_deployed_with_evidence(
    tenant, people, clock, oracle, django_capture_on_commit_callbacks
):
    staging = tenant.staging
    branding_update(
        environment=staging,
        actor=people.marketing,
        primary_color="#0b6e4f",
        footer_text="New HELOC: borrow against your home.",
    )
    marketing = staff_client(people.marketing, staging)
    response = marketing.post(
        reverse("admin:releases_release_create"), {"title": "HELOC copy and colour"}, follow=True
    )
    release = Release._base_manager.get(environment=staging)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Primary color" in page
    assert "#0b6e4f" in page
    assert "#1f4e79" in page
    assert "Production now" in page
    assert "After this release" in page
    assert {f["field"] for f in release.diff[0]["fields"]} == {"primary_color", "footer_text"}

    sign_url = reverse("admin:releases_release_sign", args=[release.pk])
    response = marketing.post(sign_url, {"role": "marketing", "decision": "approve"}, follow=True)
    assert "someone else must approve" in " ".join(messages_of(response))
    for person, role in (
        (people.it, "it"),
        (people.lending, "lending"),
        (people.marketing2, "marketing"),
    ):
        response = staff_client(person, staging).post(
            sign_url, {"role": role, "decision": "approve", "comment": f"{role} ok"}, follow=True
        )
        assert "recorded" in " ".join(messages_of(response))
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED

    it = staff_client(people.it, staging)
    schedule_url = reverse("admin:releases_release_schedule", args=[release.pk])
    response = it.post(schedule_url, {"at": "2025-03-03T14:30"}, follow=True)
    refusal = " ".join(messages_of(response))
    assert "outside" in refusal
    assert "Tuesday 04 March 2025 22:00" in refusal
    response = it.post(schedule_url, {"at": "2025-03-04T23:00"}, follow=True)
    release.refresh_from_db()
    assert release.state == Release.State.SCHEDULED
    assert release.scheduled_for == TUESDAY_23

    clock.set(TUESDAY_23)
    with django_capture_on_commit_callbacks(execute=True):
        deploy_due()
    with environment_scope(tenant.production):
        assert Branding.objects.get().primary_color == "#0b6e4f"
    # An hour of healthy production traffic after the deploy, judged by the real oracle.
    oracle.rate, oracle.sample = 0.002, 900
    clock.set(TUESDAY_23 + dt.timedelta(minutes=61))
    from releases.tasks import watch_due

    watch_due()
    release.refresh_from_db()
    assert release.watch_state == Release.Watch.PASSED, release.watch_verdict

    it = staff_client(people.it, staging)  # a fresh session: the clock moved a day on
    evidence = it.get(reverse("admin:releases_release_evidence", args=[release.pk]) + "?download=1")
    assert evidence.status_code == 200
    assert "attachment" in evidence["Content-Disposition"]
    text = evidence.content.decode()
    for expected in (
        "ivan@cu.test",
        "lena@cu.test",
        "mo@cu.test",
        "lending ok",
        "Tuesday 4 March 2025 23:00",
        "http_5xx_rate",
        "900",
        "Passed",
    ):
        assert expected in text, expected


@pytest.mark.django_db
def test_release_admin__create_with_no_changes__says_why(tenant, people):
    client = staff_client(people.marketing, tenant.staging)
    response = client.post(reverse("admin:releases_release_create"), follow=True)
    assert "Nothing to release" in " ".join(messages_of(response))
    assert not Release._base_manager.exists()


@pytest.mark.django_db
def test_release_admin__bad_schedule_input__shows_the_field_error(tenant, people, clock):
    from tests.releases.test_release_flow import approved

    release = approved(tenant, people)
    client = staff_client(people.it, tenant.staging)
    response = client.post(
        reverse("admin:releases_release_schedule", args=[release.pk]), {"at": "soon"}, follow=True
    )
    assert "Deploy at: Enter a valid date/time." in " ".join(messages_of(response))
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED


@pytest.mark.django_db
def test_release_admin__seen_from_production__lists_the_institution_releases(tenant, people):
    branding_update(environment=tenant.staging, actor=None, primary_color="#00aa00")
    client = staff_client(people.marketing, tenant.staging)
    client.post(reverse("admin:releases_release_create"))
    release = Release._base_manager.get()
    production = staff_client(people.it, tenant.production)
    response = production.get(reverse("admin:releases_release_changelist"))
    assert [r.pk for r in response.context["cl"].result_list] == [release.pk]
    assert (
        production.get(reverse("admin:releases_release_change", args=[release.pk])).status_code
        == 200
    )


@pytest.mark.django_db
def test_release_policy_admin__other_institution__404_and_admin_only_changes(tenant, people):
    other = make_tenant()
    client = staff_client(people.admin, tenant.staging)
    assert client.get(reverse("admin:releases_releasepolicy_changelist")).status_code == 200
    mine = ReleasePolicy.objects.get(institution=tenant.institution)
    from releases.services import policy_for

    theirs = policy_for(other.institution)
    url = reverse("admin:releases_releasepolicy_change", args=[theirs.pk])
    assert client.get(url).status_code == 404
    own = reverse("admin:releases_releasepolicy_change", args=[mine.pk])
    marketing = staff_client(people.marketing, tenant.staging)
    assert marketing.post(own, {}).status_code == 403
    response = client.post(
        own,
        {
            "required_roles": ["it", "lending"],
            "watch_minutes": "30",
            "auto_rollback": "on",
            "watch_rules": '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, '
            '"fail_threshold": 0.05, "min_sample": 100}]',
            "windows-TOTAL_FORMS": "1",
            "windows-INITIAL_FORMS": "1",
            "windows-0-id": str(mine.windows.get().pk),
            "windows-0-policy": str(mine.pk),
            "windows-0-weekdays": "[0, 1]",
            "windows-0-start": "21:00",
            "windows-0-end": "04:00",
            "freezes-TOTAL_FORMS": "1",
            "freezes-INITIAL_FORMS": "0",
            "freezes-0-first_day": "2025-12-24",
            "freezes-0-last_day": "2025-12-26",
            "freezes-0-reason": "Holidays",
        },
    )
    assert response.status_code == 302, response.content
    mine.refresh_from_db()
    assert mine.required_roles == ["it", "lending"]
    assert mine.auto_rollback
    assert mine.windows.get().weekdays == [0, 1]
    assert mine.freezes.get().reason == "Holidays"
    assert AuditEntry.objects.filter(object_type="releases.ReleasePolicy").exists()


def _policy_post(policy, **overrides) -> dict:
    window = policy.windows.get()
    return {
        "required_roles": ["it", "lending"],
        "watch_minutes": "30",
        "watch_rules": '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, '
        '"fail_threshold": 0.05, "min_sample": 100}]',
        "windows-TOTAL_FORMS": "1",
        "windows-INITIAL_FORMS": "1",
        "windows-0-id": str(window.pk),
        "windows-0-policy": str(policy.pk),
        "windows-0-weekdays": "[1, 2, 3]",
        "windows-0-start": "22:00",
        "windows-0-end": "05:00",
        "freezes-TOTAL_FORMS": "0",
        "freezes-INITIAL_FORMS": "0",
        **overrides,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ('[{"metric": "http_5xx_rate"}]', "Rule 1 (http_5xx_rate): pass_threshold is required"),
        (
            '[{"metric": "http_5xx_rate", "comparator": "eq", "pass_threshold": 0.01, '
            '"fail_threshold": 0.05}]',
            "Rule 1 (http_5xx_rate): comparator 'eq' is unknown",
        ),
        ('{"metric": "http_5xx_rate"}', "Give a list of rules"),
        ('["http_5xx_rate"]', "Rule 1: give an object"),
        (
            '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, "fail_threshold": 0.05}, '
            '{"metric": "http_5xx_rate", "pass_threshold": 0.5, "fail_threshold": 0.05}]',
            "Rule 2 (http_5xx_rate): fail_threshold must be >= pass_threshold",
        ),
        (
            '[{"metric": "http_5xx_rate", "pass_threshold": "0.01", "fail_threshold": 0.05}]',
            "pass_threshold must be a number",
        ),
        (
            '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, "fail_threshold": 0.05, '
            '"min_sample": -1}]',
            "min_sample must be a whole number of 0 or more",
        ),
        (
            '[{"metric": "http_5xx_rat", "pass_threshold": 0.01, "fail_threshold": 0.05}]',
            "Rule 1 (http_5xx_rat): metric 'http_5xx_rat' is unknown",
        ),
        (
            '[{"metric": "http_5xx_rate", "pass_threshold": 0.01, "fail_threshold": 0.05, '
            '"min_sampel": 100}]',
            "unknown fields min_sampel",
        ),
    ],
)
def test_release_policy_admin__watch_rules_the_watch_cannot_read__are_refused(
    tenant, people, rules, error
):
    # The watch (releases.watch.rules_from_policy, run by the watch task after every
    # deploy) could not read these: refused in the form, the stored rules unchanged.
    policy = policy_for(tenant.institution)
    stored = policy.watch_rules
    client = staff_client(people.admin, tenant.staging)
    response = client.post(
        reverse("admin:releases_releasepolicy_change", args=[policy.pk]),
        _policy_post(policy, watch_rules=rules),
    )
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["watch_rules"]
    assert message.startswith(error) or error in message, message
    policy = ReleasePolicy.objects.get(pk=policy.pk)
    assert policy.watch_rules == stored
    assert policy.required_roles != ["it", "lending"]  # nothing else changed either
    rules_from_policy(policy)


@pytest.mark.django_db
def test_release_policy_admin__readable_watch_rules__saved_and_the_watch_reads_them(tenant, people):
    policy = policy_for(tenant.institution)
    rules = (
        '[{"metric": "http_5xx_rate", "comparator": "lt", "pass_threshold": 0.01, '
        '"fail_threshold": 0.05, "min_sample": 100, "cohort": "non_test", "name": "5xx"}, '
        '{"metric": "delivery_failure_rate", "comparator": "higher", "pass_threshold": 1, '
        '"fail_threshold": 0.5}]'
    )
    response = staff_client(people.admin, tenant.staging).post(
        reverse("admin:releases_releasepolicy_change", args=[policy.pk]),
        _policy_post(policy, watch_rules=rules),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    specs = rules_from_policy(ReleasePolicy.objects.get(pk=policy.pk))
    assert [(s.name, s.comparator, s.min_sample, s.cohort) for s in specs] == [
        ("5xx", "lower", 100, "non_test"),
        ("delivery_failure_rate", "higher", 100, "non_test"),  # the defaults of a bare rule
    ]


@pytest.mark.django_db
def test_release_policy_admin__changed_deploy_window__audit_has_the_before_value(tenant, people):
    policy = policy_for(tenant.institution)
    window = policy.windows.get()
    response = staff_client(people.admin, tenant.staging).post(
        reverse("admin:releases_releasepolicy_change", args=[policy.pk]),
        _policy_post(
            policy,
            **{
                "windows-0-start": "21:00",
                "freezes-TOTAL_FORMS": "1",
                "freezes-0-first_day": "2025-12-24",
                "freezes-0-last_day": "2025-12-26",
                "freezes-0-reason": "Holidays",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(object_type="releases.DeployWindow", object_id=str(window.pk))
    assert entry.action == AuditEntry.Action.UPDATE
    assert entry.changes["start"] == {"before": "22:00:00", "after": "21:00:00"}
    assert set(entry.changes) == {"start"}  # only what changed
    freeze = AuditEntry.objects.get(object_type="releases.FreezePeriod")
    assert freeze.action == AuditEntry.Action.CREATE
    assert freeze.changes["reason"] == {"before": None, "after": "Holidays"}


@pytest.mark.django_db
def test_release_policy_admin__deleted_deploy_window__audit_has_the_stored_row(tenant, people):
    policy = policy_for(tenant.institution)
    window = policy.windows.get()
    stored_start = window.start.strftime("%H:%M:%S")
    response = staff_client(people.admin, tenant.staging).post(
        reverse("admin:releases_releasepolicy_change", args=[policy.pk]),
        _policy_post(policy, **{"windows-0-start": "03:00", "windows-0-DELETE": "on"}),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not policy.windows.exists()
    entry = AuditEntry.objects.get(object_type="releases.DeployWindow", object_id=str(window.pk))
    assert entry.action == AuditEntry.Action.DELETE
    assert entry.changes["start"] == {"before": stored_start, "after": None}


@pytest.mark.django_db
def test_emergency_change__admin_with_reason__changes_production_and_is_audited(tenant, people):
    with environment_scope(tenant.production):
        branding = Branding.objects.get()
    url = reverse("admin:releases_release_emergency", args=["institutions.Branding", branding.pk])
    it = staff_client(people.it, tenant.production)
    assert it.get(url).status_code == 403
    admin = staff_client(people.admin, tenant.production)
    form = admin.get(url)
    assert form.status_code == 200
    data = {
        "display_name": branding.display_name,
        "primary_color": "#000000",
        "accent_color": branding.accent_color,
        "font": branding.font,
        "housing_notice": branding.housing_notice,
        "reason": "",
    }
    response = admin.post(url, data)
    assert response.status_code == 400
    assert "reason is required" in response.content.decode()
    with environment_scope(tenant.production):
        assert Branding.objects.get().primary_color == branding.primary_color
    data["reason"] = "Brand colour clashes with the accessibility audit"
    assert admin.post(url, data).status_code == 302
    with environment_scope(tenant.production):
        assert Branding.objects.get().primary_color == "#000000"
    entry = AuditEntry.objects.filter(environment=tenant.production).latest("id")
    assert entry.reason.startswith("Emergency change: Brand colour")
    assert entry.changes["primary_color"]["after"] == "#000000"
    # Production configuration stays read-only in its own admin page.
    page = admin.get(reverse("admin:institutions_branding_change", args=[branding.pk]))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]


@pytest.mark.django_db
def test_emergency_change__staging_object__answers_404(tenant, people):
    with environment_scope(tenant.staging):
        branding = Branding.objects.get()
    other = staff_user(tenant.institution, "admin")
    client = staff_client(other, tenant.production)
    url = reverse("admin:releases_release_emergency", args=["institutions.Branding", branding.pk])
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_emergency_change__many_to_many_field__changed_in_the_audited_change(
    tenant, people, promotables
):
    production = tenant.production
    widget = promotables.Gadget.objects.create(environment=production, name="Widget")
    sprocket = promotables.Gadget.objects.create(environment=production, name="Sprocket")
    in_staging = promotables.Gadget.objects.create(environment=tenant.staging, name="Cog")
    part = promotables.Part.objects.create(environment=production, gadget=widget, code="A1")
    url = reverse("admin:releases_release_emergency", args=["releases.Part", part.pk])
    admin = staff_client(people.admin, production)
    data = {"gadget": widget.pk, "code": "A1", "label": "Fixed", "reason": "Wrong fit"}

    # Only production's own rows can be chosen; nothing changes on a refusal.
    response = admin.post(url, {**data, "works_with": [in_staging.pk]})
    assert response.status_code == 400
    assert "works_with" in response.context["form"].errors
    assert list(part.works_with.all()) == []
    response = admin.post(url, {**data, "works_with": [sprocket.pk], "reason": ""})
    assert response.status_code == 400
    assert list(part.works_with.all()) == []

    assert admin.post(url, {**data, "works_with": [sprocket.pk]}).status_code == 302
    part.refresh_from_db()
    assert (part.label, list(part.works_with.all())) == ("Fixed", [sprocket])
    entries = AuditEntry.objects.filter(object_type="releases.Part", object_id=str(part.pk))
    assert {e.reason for e in entries} == {"Emergency change: Wrong fit"}
    changes = {name: change for e in entries for name, change in e.changes.items()}
    assert changes == {
        "label": {"before": "", "after": "Fixed"},
        "works_with": {"before": [], "after": [sprocket.pk]},
    }


@pytest.mark.django_db
def test_release_admin__schedule_form__shown_only_to_it_and_admin(tenant, people, clock):
    from tests.releases.test_release_flow import approved

    release = approved(tenant, people)
    url = reverse("admin:releases_release_change", args=[release.pk])
    for person, shown in ((people.marketing, False), (people.lending, False), (people.it, True)):
        page = staff_client(person, tenant.staging).get(url).content.decode()
        assert ("Schedule the deploy" in page) is shown, person
        assert ("Deploy now" in page) is shown, person
    response = staff_client(people.marketing, tenant.staging).post(
        reverse("admin:releases_release_schedule", args=[release.pk]),
        {"at": "2025-03-04T23:00"},
        follow=True,
    )
    assert "needs the IT or admin role" in " ".join(messages_of(response))
    release.refresh_from_db()
    assert release.state == Release.State.APPROVED


@pytest.mark.django_db
def test_emergency_change__name_taken_in_production__form_error_and_nothing_saved(tenant, people):
    from homes.models import OfferProduct
    from tests.homes.factories import OfferProductFactory

    product = OfferProductFactory(environment=tenant.production, name="HELOC A")
    OfferProductFactory(environment=tenant.production, name="HELOC B")
    OfferProductFactory(environment=tenant.staging, name="HELOC B")  # other environment
    url = reverse("admin:releases_release_emergency", args=["homes.OfferProduct", product.pk])
    admin = staff_client(people.admin, tenant.production)
    form = admin.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(name="HELOC B", reason="Fix the product name")
    response = admin.post(url, data)
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Offer product with this Name already exists."
    ]
    product.refresh_from_db()
    assert product.name == "HELOC A"
    assert not AuditEntry.objects.filter(reason__startswith="Emergency change").exists()
    data["name"] = "HELOC C"  # a free name goes through
    assert admin.post(url, data).status_code == 302
    assert OfferProduct._base_manager.get(pk=product.pk).name == "HELOC C"


@pytest.mark.django_db
def test_evidence__watch_period__is_the_one_the_deploy_was_given(
    tenant, people, clock, oracle, django_capture_on_commit_callbacks
):
    from releases.services import policy_for, release_deploy, release_watch_check
    from tests.releases.test_release_flow import approved

    policy = policy_for(tenant.institution)
    policy.watch_minutes = 45
    policy.save()
    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    oracle.rate, oracle.sample = 0.5, 20  # too few requests: inconclusive, still watching
    clock.set(TUESDAY_23 + dt.timedelta(minutes=10))
    release_watch_check(environment=tenant.staging, release=release)
    policy.watch_minutes = 120  # changed afterwards: the evidence keeps what was used
    policy.save()
    page = staff_client(people.it, tenant.staging).get(
        reverse("admin:releases_release_evidence", args=[release.pk])
    )
    text = page.content.decode()
    assert "watch period 45 minutes" in text
    assert "120" not in text


@pytest.mark.django_db
def test_release_admin__cancel_scheduled_deploy__it_and_admin_only_with_a_reason(
    tenant, people, clock
):
    from releases.services import release_schedule
    from tests.releases.test_release_flow import approved

    release = approved(tenant, people)
    release_schedule(environment=tenant.staging, release=release, at=TUESDAY_23, actor=people.it)
    page_url = reverse("admin:releases_release_change", args=[release.pk])
    url = reverse("admin:releases_release_cancel", args=[release.pk])
    assert (
        "Cancel the deploy"
        not in staff_client(people.marketing, tenant.staging).get(page_url).content.decode()
    )
    response = staff_client(people.marketing, tenant.staging).post(
        url, {"reason": "Outage"}, follow=True
    )
    assert "needs the IT or admin role" in " ".join(messages_of(response))
    it = staff_client(people.it, tenant.staging)
    assert "Cancel the deploy" in it.get(page_url).content.decode()
    response = it.post(url, {"reason": ""}, follow=True)
    assert "reason is required" in " ".join(messages_of(response))
    release.refresh_from_db()
    assert release.state == Release.State.SCHEDULED
    # Another institution's staff get a 404, whatever their role there.
    other = make_tenant()
    outsider = staff_user(other.institution, "admin", "it")
    assert staff_client(outsider, other.staging).post(url, {"reason": "x"}).status_code == 404
    response = it.post(url, {"reason": "Branch outage tonight"}, follow=True)
    assert "Cancelled" in " ".join(messages_of(response))
    release.refresh_from_db()
    assert (release.state, release.scheduled_for) == (Release.State.APPROVED, None)
    assert "Cancel the deploy" not in it.get(page_url).content.decode()


@pytest.mark.django_db
def test_release_admin__deployed_rollback__offers_no_roll_back_button(tenant, people, clock):
    from releases.services import release_deploy, release_rollback
    from tests.releases.test_release_flow import approved

    release = approved(tenant, people)
    clock.set(TUESDAY_23)
    release_deploy(environment=tenant.staging, release=release, actor=people.it)
    release.refresh_from_db()
    it = staff_client(people.it, tenant.staging)
    page = it.get(reverse("admin:releases_release_change", args=[release.pk])).content.decode()
    assert ">Roll back</button>" in page
    rollback = release_rollback(
        environment=tenant.staging, release=release, actor=people.it, reason="5xx on offers"
    )
    page = it.get(reverse("admin:releases_release_change", args=[rollback.pk])).content.decode()
    assert ">Roll back</button>" not in page
    assert "make a new release from staging" in page


@pytest.mark.django_db
def test_release_page__an_approver_lost_the_role__reads_waiting_for_sign_off(tenant, people, clock):
    """The page never shows a release as approved on an approval that no longer stands."""
    from institutions.services import staff_role_revoke
    from tests.releases.test_release_flow import approved

    release = approved(tenant, people)
    staff_role_revoke(
        institution=tenant.institution, user=people.lending, role="lending", actor=people.admin
    )
    page = staff_client(people.it, tenant.staging).get(
        reverse("admin:releases_release_change", args=[release.pk])
    )
    assert page.status_code == 200
    release.refresh_from_db()
    assert release.state == Release.State.PENDING
    text = page.content.decode()
    assert "Back to waiting for sign-off from" in text
    assert "no longer hold the lending role" in text
