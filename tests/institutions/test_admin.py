import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from institutions.models import AuditEntry, Branding, Domain, StaffRole
from institutions.services import institution_update
from tests.conftest import staff_client, totp_now
from tests.factories import MemberFactory, UserFactory, staff_user

LOGIN = "/admin/login/?next=/admin/"


def _login(client, user, password="correct horse battery", token=None):
    return client.post(
        LOGIN,
        {"username": user.username, "password": password, "otp_token": token or totp_now(user)},
    )


@pytest.mark.django_db
def test_staff_login__with_password_and_totp__reaches_the_admin(tenant):
    user = staff_user(tenant.institution, "marketing")
    client = Client(HTTP_HOST="chimney.test")
    response = _login(client, user)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_staff_login__without_second_factor__is_refused(tenant):
    user = staff_user(tenant.institution, "marketing")
    client = Client(HTTP_HOST="chimney.test")
    response = client.post(LOGIN, {"username": user.username, "password": "correct horse battery"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get("/admin/").status_code == 302  # still sent to the login page
    response = _login(client, user, token="000000")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_staff_login__after_100_failures__locks_the_account_even_with_the_right_password(tenant):
    user = staff_user(tenant.institution, "it")
    client = Client(HTTP_HOST="chimney.test", REMOTE_ADDR="10.0.0.1")
    for _ in range(99):
        assert _login(client, user, password="wrong").status_code == 200
    # The 100th failure is still answered as a failure; after it the account is locked.
    _login(client, user, password="wrong")
    other = Client(HTTP_HOST="chimney.test", REMOTE_ADDR="10.9.9.9")
    response = _login(other, user)
    assert response.status_code == 429
    assert other.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_staff_without_role__sees_nothing_of_any_institution(tenant):
    user = UserFactory()
    client = staff_client(user)
    assert client.get("/admin/").status_code == 302
    assert client.get(reverse("admin:homes_member_changelist")).status_code == 302


@pytest.mark.django_db
def test_superuser__sees_all_institutions(tenant, other_tenant):
    user = UserFactory(is_superuser=True)
    client = staff_client(user)
    listed = (
        client.get(reverse("admin:institutions_institution_changelist")).context["cl"].result_list
    )
    assert {i.pk for i in listed} >= {tenant.institution.pk, other_tenant.institution.pk}


@pytest.mark.django_db
def test_admin_pages__show_the_environment__production_unmistakably(tenant):
    user = staff_user(tenant.institution, "admin")
    client = staff_client(user, tenant.staging)
    page = client.get(reverse("admin:homes_member_changelist")).content.decode()
    assert 'data-environment="staging"' in page
    assert "STAGING" in page
    client = staff_client(user, tenant.production)
    page = client.get(reverse("admin:homes_member_changelist")).content.decode()
    assert 'data-environment="production"' in page
    assert "PRODUCTION — changes here reach real members" in page


@pytest.mark.django_db
def test_branding_admin__marketing_changes_staging__audited_with_before_and_after(tenant):
    user = staff_user(tenant.institution, "marketing")
    client = staff_client(user, tenant.staging)
    with scopes_disabled():
        branding = Branding.objects.get(environment=tenant.staging)
    url = reverse("admin:institutions_branding_change", args=[branding.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "branding-preview" in page.content.decode()
    data = {
        "display_name": "Acme CU",
        "primary_color": "#112233",
        "accent_color": "#445566",
        "font": "serif",
        "support_email": "help@acme.test",
        "support_phone": "",
        "support_url": "",
        "footer_text": "",
        "housing_notice": "opportunity",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.filter(object_type="institutions.Branding").latest("id")
    assert entry.actor == user
    assert entry.environment == tenant.staging
    assert entry.changes["primary_color"] == {"before": "#1f4e79", "after": "#112233"}
    assert entry.changes["housing_notice"]["after"] == "opportunity"


@pytest.mark.django_db
def test_branding_admin__bad_colour__shows_the_error_and_changes_nothing(tenant):
    user = staff_user(tenant.institution, "marketing")
    client = staff_client(user, tenant.staging)
    with scopes_disabled():
        branding = Branding.objects.get(environment=tenant.staging)
    before = AuditEntry.objects.count()
    url = reverse("admin:institutions_branding_change", args=[branding.pk])
    response = client.post(
        url,
        {
            "display_name": "X",
            "primary_color": "red",
            "accent_color": "#000000",
            "font": "system",
            "housing_notice": "lender",
        },
    )
    assert response.status_code == 200
    assert "primary_color" in response.context["adminform"].form.errors
    assert AuditEntry.objects.count() == before
    with scopes_disabled():
        assert Branding.objects.get(pk=branding.pk).primary_color == "#1f4e79"


@pytest.mark.django_db
def test_branding_admin__production__is_read_only_and_lending_cannot_edit(tenant):
    marketing = staff_user(tenant.institution, "marketing")
    with scopes_disabled():
        prod = Branding.objects.get(environment=tenant.production)
        staging = Branding.objects.get(environment=tenant.staging)
    client = staff_client(marketing, tenant.production)
    url = reverse("admin:institutions_branding_change", args=[prod.pk])
    assert client.post(url, {"display_name": "Hacked"}).status_code == 403
    lending = staff_user(tenant.institution, "lending")
    client = staff_client(lending, tenant.staging)
    url = reverse("admin:institutions_branding_change", args=[staging.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"display_name": "Hacked"}).status_code == 403


@pytest.mark.django_db
def test_audit_log__is_read_only_and_filterable(tenant):
    user = staff_user(tenant.institution, "admin")
    client = staff_client(user, tenant.staging)
    institution_update(
        institution=tenant.institution, actor=user, postal_address="2 Elm Street, Springfield"
    )
    update = AuditEntry.objects.get(institution=tenant.institution, action=AuditEntry.Action.UPDATE)
    entry = AuditEntry.objects.filter(institution=tenant.institution).first()
    assert (
        client.get(reverse("admin:institutions_auditentry_change", args=[entry.pk])).status_code
        == 200
    )
    assert (
        client.post(
            reverse("admin:institutions_auditentry_change", args=[entry.pk]), {}
        ).status_code
        == 403
    )
    assert client.get(reverse("admin:institutions_auditentry_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:institutions_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    changelist = reverse("admin:institutions_auditentry_changelist")
    everything = client.get(changelist).context["cl"].result_list
    assert update.pk in {e.pk for e in everything}
    listed = client.get(changelist + "?action__exact=create")
    assert listed.status_code == 200
    shown = list(listed.context["cl"].result_list)
    assert shown
    assert {e.action for e in shown} == {AuditEntry.Action.CREATE}
    assert update.pk not in {e.pk for e in shown}


@pytest.mark.django_db
def test_member_admin__changes_are_audited_and_visit_links_respect_environment(tenant):
    user = staff_user(tenant.institution, "it")
    real = MemberFactory(environment=tenant.production, is_test=False)
    tester = MemberFactory(environment=tenant.production, is_test=True)
    client = staff_client(user, tenant.production)
    response = client.get(reverse("admin:homes_member_visit", args=[real.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(reverse("admin:homes_member_change", args=[real.pk]))
    response = client.get(reverse("admin:homes_member_visit", args=[tester.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{tenant.production.base_url}/visit/")
    url = reverse("admin:homes_member_change", args=[tester.pk])
    data = {
        "email": tester.email,
        "first_name": "Renamed",
        "last_name": tester.last_name,
        "external_id": tester.external_id,
        "is_test": "on",
        "enrollment": "enrolled",
    }
    assert client.post(url, data).status_code == 302
    entry = AuditEntry.objects.filter(object_type="homes.Member", object_id=str(tester.pk)).latest(
        "id"
    )
    assert entry.changes["first_name"]["after"] == "Renamed"
    assert entry.actor == user


def _entries(object_type, object_id):
    return list(
        AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("id")
    )


@pytest.mark.django_db
def test_staff_role_admin__grant_change_revoke__audited_and_the_grantee_made_staff(tenant):
    root = UserFactory(is_superuser=True)
    client = staff_client(root, tenant.staging)
    newcomer = UserFactory(is_staff=False)
    response = client.post(
        reverse("admin:institutions_staffrole_add"),
        {"user": newcomer.pk, "institution": tenant.institution.pk, "role": "lending"},
    )
    assert response.status_code == 302
    grant = StaffRole.objects.get(user=newcomer)
    newcomer.refresh_from_db()
    assert newcomer.is_staff  # else the role would not reach the admin
    (created,) = _entries("institutions.StaffRole", grant.pk)
    assert (created.action, created.actor, created.institution) == (
        "create",
        root,
        tenant.institution,
    )
    assert created.changes["role"] == {"before": None, "after": "lending"}

    response = client.post(
        reverse("admin:institutions_staffrole_change", args=[grant.pk]),
        {"user": newcomer.pk, "institution": tenant.institution.pk, "role": "marketing"},
    )
    assert response.status_code == 302
    (now,) = StaffRole.objects.filter(user=newcomer)
    assert now.role == "marketing"
    assert [e.action for e in _entries("institutions.StaffRole", grant.pk)] == ["create", "delete"]
    assert [e.action for e in _entries("institutions.StaffRole", now.pk)] == ["create"]

    response = client.post(
        reverse("admin:institutions_staffrole_delete", args=[now.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not StaffRole.objects.filter(user=newcomer).exists()
    revoked = _entries("institutions.StaffRole", now.pk)[-1]
    assert (revoked.action, revoked.actor) == ("delete", root)
    assert revoked.changes["role"] == {"before": "marketing", "after": None}


@pytest.mark.django_db
def test_domain_admin__typed_in_capitals__saved_lower_case__resolves__audited(tenant):
    root = UserFactory(is_superuser=True)
    client = staff_client(root, tenant.production)
    response = client.post(
        reverse("admin:institutions_domain_add"),
        {"domain": "Home.Example.COM.", "environment": tenant.production.pk},
    )
    assert response.status_code == 302
    domain = Domain.objects.get(environment=tenant.production)
    assert domain.domain == "home.example.com"
    assert Client(HTTP_HOST="HOME.example.com").get("/login/").status_code == 200
    (created,) = _entries("institutions.Domain", domain.pk)
    assert (created.action, created.actor, created.environment) == (
        "create",
        root,
        tenant.production,
    )

    # The same domain in other capitals is the same domain: refused, nothing changes.
    response = client.post(
        reverse("admin:institutions_domain_add"),
        {"domain": "HOME.example.com", "environment": tenant.staging.pk},
    )
    assert response.status_code == 200
    assert "domain" in response.context["adminform"].form.errors
    assert Domain.objects.count() == 1

    response = client.post(
        reverse("admin:institutions_domain_delete", args=[domain.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert [e.action for e in _entries("institutions.Domain", domain.pk)] == ["create", "delete"]


@pytest.mark.django_db
def test_user_admin__changes_password_and_deletion__audited_without_the_hash(tenant):
    root = UserFactory(is_superuser=True)
    client = staff_client(root)
    response = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    newcomer = get_user_model().objects.get(username="newcomer")
    (created,) = _entries("auth.User", newcomer.pk)
    assert (created.action, created.actor) == ("create", root)
    assert created.changes["password"] == {"before": None, "after": "[redacted]"}

    user = staff_user(tenant.institution, "it", first_name="Ada")
    response = client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": user.username,
            "first_name": "Ada",
            "last_name": "Park",
            "email": user.email,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2024-01-02",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    changed = _entries("auth.User", user.pk)[-1]
    assert (changed.action, changed.actor) == ("update", root)
    assert changed.changes["is_superuser"] == {"before": False, "after": True}
    assert changed.changes["last_name"] == {"before": "", "after": "Park"}
    assert "password" not in changed.changes  # unchanged

    old_hash = user.password
    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {
            "password1": "a much longer passphrase",
            "password2": "a much longer passphrase",
            "set_usable_password": "true",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    password = _entries("auth.User", user.pk)[-1]
    assert password.changes == {"password": {"before": "[redacted]", "after": "[redacted]"}}

    response = client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    entries = _entries("auth.User", user.pk)
    assert entries[-1].action == "delete"
    assert entries[-1].changes["username"]["before"] == user.username
    revoked = AuditEntry.objects.filter(object_type="institutions.StaffRole", action="delete")
    assert revoked.count() == 1  # the role went with the user, recorded as revoked
    dumped = str(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert old_hash not in dumped
    assert user.password not in dumped


@pytest.mark.django_db
def test_audit_log__platform_entries__operators_find_and_open_them__institution_staff_get_404(
    tenant,
):
    """Changes to staff accounts belong to no institution; the admin always selects an
    environment for an operator, whose audit log must show them beside it."""
    root = UserFactory(is_superuser=True)
    client = staff_client(root)
    staff = staff_user(tenant.institution, "it")
    response = client.post(reverse("admin:auth_user_delete", args=[staff.pk]), {"post": "yes"})
    assert response.status_code == 302
    (deleted,) = [e for e in _entries("auth.User", staff.pk) if e.action == "delete"]
    assert deleted.institution is None
    institution_update(institution=tenant.institution, actor=root, nmls_id="99999")
    institutional = AuditEntry.objects.get(institution=tenant.institution, action="update")
    changelist = reverse("admin:institutions_auditentry_changelist")
    page = reverse("admin:institutions_auditentry_change", args=[deleted.pk])

    listed = {e.pk for e in client.get(changelist).context["cl"].result_list}

    assert {deleted.pk, institutional.pk} <= listed
    assert client.get(page).status_code == 200
    platform = client.get(changelist + "?scope=platform").context["cl"].result_list
    assert deleted.pk in {e.pk for e in platform}
    assert institutional.pk not in {e.pk for e in platform}
    institution_admin = staff_client(staff_user(tenant.institution, "admin"), tenant.staging)
    assert deleted.pk not in {
        e.pk for e in institution_admin.get(changelist).context["cl"].result_list
    }
    assert institution_admin.get(page).status_code == 404


def _change_own_password(client, new: str, repeated: str):
    return client.post(
        reverse("admin:password_change"),
        {"old_password": "correct horse battery", "new_password1": new, "new_password2": repeated},
    )


@pytest.mark.django_db
def test_admin_password_change_page__own_password__audited_without_the_hash(tenant):
    user = staff_user(tenant.institution, "marketing")
    old_hash = user.password
    client = staff_client(user, tenant.staging)
    new = "a much longer passphrase 42"
    refused = _change_own_password(client, new, "not the same passphrase 42")
    assert refused.status_code == 200
    assert not [e for e in _entries("auth.User", user.pk) if "password" in e.changes]

    response = _change_own_password(client, new, new)

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a much longer passphrase 42")
    (entry,) = [e for e in _entries("auth.User", user.pk) if "password" in e.changes]
    assert (entry.action, entry.actor) == ("update", user)
    assert entry.changes == {"password": {"before": "[redacted]", "after": "[redacted]"}}
    dumped = str(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert old_hash not in dumped
    assert user.password not in dumped
