import re
from datetime import timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled
from kombu.exceptions import OperationalError

from homes.middleware import MEMBER_SESSION_KEY
from homes.models import MagicLinkToken, Member
from homes.services import launch_link_build, member_visit_link_build
from homes.services.login import magic_link_issue
from institutions.models import AuditEntry
from institutions.services import staff_role_revoke
from institutions.tenancy import environment_scope
from tests.conftest import member_client, staff_client
from tests.factories import MemberFactory, staff_user
from tests.notifications.conftest import SinkHandler, SMTPSink, smtp_at


def _request_link(client, email):
    return client.post("/login/", {"email": email})


def _link_path(message) -> str:
    return re.search(r"https?://[^/]+(/login/[^/\s]+/)", message.body).group(1)


@pytest.fixture
def host_client(tenant):
    return Client(HTTP_HOST=tenant.production.host)


@pytest.mark.django_db(transaction=True)
def test_magic_link__request_and_redeem__signs_in_once(tenant, host_client):
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    response = _request_link(host_client, "ADA@example.test")
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.test"]
    path = _link_path(mail.outbox[0])
    assert host_client.get(path).status_code == 200  # a confirm page: GET spends nothing
    key_before = host_client.session.session_key
    response = host_client.post(path)
    assert response.status_code == 302
    assert host_client.session[MEMBER_SESSION_KEY] == member.pk
    assert host_client.session.session_key != key_before
    assert host_client.get("/").status_code == 200
    replay = Client(HTTP_HOST=tenant.production.host).post(path)
    assert replay.status_code == 400
    assert b"already used" in replay.content


@pytest.mark.django_db(transaction=True)
def test_magic_link__unknown_email__same_answer_and_no_email(tenant, host_client):
    MemberFactory(environment=tenant.production, email="ada@example.test")
    known = _request_link(host_client, "ada@example.test")
    unknown = _request_link(Client(HTTP_HOST=tenant.production.host), "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    assert known.content.replace(b"ada@example.test", b"X") == unknown.content.replace(
        b"nobody@example.test", b"X"
    )
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_magic_link__task_queue_unreachable__known_and_unknown_emails_answer_alike(tenant, caplog):
    """With the task queue down the page still answers the same whether or not the email is
    a member's (no server error that gives members away), and the lost email is logged."""
    MemberFactory(environment=tenant.production, email="ada@example.test")
    with mock.patch(
        "homes.tasks.send_magic_link.apply_async", side_effect=OperationalError("broker down")
    ):
        known = _request_link(Client(HTTP_HOST=tenant.production.host), "ada@example.test")
        unknown = _request_link(Client(HTTP_HOST=tenant.production.host), "nobody@example.test")

    assert known.status_code == unknown.status_code == 200
    assert known.content.replace(b"ada@example.test", b"X") == unknown.content.replace(
        b"nobody@example.test", b"X"
    )
    assert len(mail.outbox) == 0
    assert [r.levelname for r in caplog.records if "login link" in r.getMessage()] == ["ERROR"]


@pytest.mark.django_db(transaction=True)
def test_magic_link__expired__is_refused_with_a_clear_page(tenant, host_client):
    MemberFactory(environment=tenant.production, email="ada@example.test")
    _request_link(host_client, "ada@example.test")
    path = _link_path(mail.outbox[0])
    with scopes_disabled():
        MagicLinkToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = host_client.post(path)
    assert response.status_code == 400
    assert b"expired" in response.content
    assert MEMBER_SESSION_KEY not in host_client.session


@pytest.mark.django_db
def test_magic_link__forged_token__is_refused(tenant, host_client):
    response = host_client.post("/login/not-a-real-token/")
    assert response.status_code == 400
    assert b"not valid" in response.content


@pytest.mark.django_db(transaction=True)
def test_magic_link__of_another_environment__is_refused(tenant, host_client):
    MemberFactory(environment=tenant.production, email="ada@example.test")
    _request_link(host_client, "ada@example.test")
    path = _link_path(mail.outbox[0])
    response = Client(HTTP_HOST=tenant.staging.host).post(path)
    assert response.status_code == 400


@pytest.mark.django_db
def test_magic_link__throttled_per_address_and_per_client(tenant, settings):
    settings.MEMBER_LOGIN_RATE_PER_ADDRESS = 3
    settings.MEMBER_LOGIN_RATE_PER_CLIENT = 5
    for i in range(3):
        client = Client(HTTP_HOST=tenant.production.host, REMOTE_ADDR=f"10.0.0.{i}")
        assert _request_link(client, "victim@example.test").status_code == 200
    client = Client(HTTP_HOST=tenant.production.host, REMOTE_ADDR="10.0.1.1")
    response = _request_link(client, "victim@example.test")
    assert response.status_code == 429
    assert b"Too many" in response.content
    same_client = Client(HTTP_HOST=tenant.production.host, REMOTE_ADDR="10.0.2.2")
    codes = [_request_link(same_client, f"user{i}@example.test").status_code for i in range(6)]
    assert codes == [200] * 5 + [429]


@pytest.mark.django_db
def test_magic_link__behind_a_load_balancer__throttled_per_forwarded_client(tenant, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.MEMBER_LOGIN_RATE_PER_CLIENT = 3

    def via_balancer(forwarded):  # every request reaches us from the balancer's address
        return Client(
            HTTP_HOST=tenant.production.host,
            REMOTE_ADDR="10.1.0.1",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    busy = via_balancer("203.0.113.5")
    codes = [_request_link(busy, f"user{i}@example.test").status_code for i in range(4)]
    assert codes == [200] * 3 + [429]
    # Another client behind the same balancer keeps its own limit...
    assert _request_link(via_balancer("203.0.113.6"), "other@example.test").status_code == 200
    # ...and the throttled one cannot escape it by sending a header of its own.
    spoofed = via_balancer("198.51.100.77, 203.0.113.5")
    assert _request_link(spoofed, "again@example.test").status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["", "not-an-email", "a" * 300 + "@x.test"])
def test_magic_link__bad_email__shows_the_form_error(tenant, host_client, email):
    response = _request_link(host_client, email)
    assert response.status_code == 400
    assert response.context["form"].errors["email"]


@pytest.mark.django_db
def test_launch_link__new_member__is_enrolled_and_signed_in(tenant, host_client):
    token = launch_link_build(
        environment=tenant.production,
        external_id="CORE-42",
        email="Grace@Example.test",
        first_name="Grace",
        last_name="Hopper",
    )
    response = host_client.get("/launch/", {"token": token, "next": "/"})
    assert response.status_code == 302
    with scopes_disabled():
        member = Member.objects.get(environment=tenant.production, external_id="CORE-42")
    assert member.enrollment == Member.Enrollment.ENROLLED
    assert member.email == "grace@example.test"
    assert host_client.session[MEMBER_SESSION_KEY] == member.pk


@pytest.mark.django_db
def test_launch_link__replayed__is_refused_and_changes_nothing(tenant, host_client):
    token = launch_link_build(environment=tenant.production, external_id="CORE-7")
    assert host_client.get("/launch/", {"token": token}).status_code == 302
    other = Client(HTTP_HOST=tenant.production.host)
    response = other.get("/launch/", {"token": token})
    assert response.status_code == 400
    assert b"already used" in response.content
    assert MEMBER_SESSION_KEY not in other.session


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "x" + t,
        lambda t: "garbage",
        lambda t: "",
        lambda t: t.split(".")[0],
        lambda t: "eyJzdWIiOjF9." + t.split(".")[1],
        lambda t: t.split(".")[0] + ".\u00e9",
        lambda t: "abc.\u00e9",
        lambda t: "e30.\u00fcber",
        lambda t: "\u00e9" + t,
    ],
    ids=[
        "bad-signature",
        "bad-payload",
        "garbage",
        "empty",
        "unsigned",
        "swapped-payload",
        "non-ascii-signature",
        "short-non-ascii-signature",
        "non-ascii-signature-of-empty-payload",
        "non-ascii-payload",
    ],
)
def test_launch_link__forged__is_refused_without_a_member(tenant, host_client, mangle):
    token = launch_link_build(environment=tenant.production, external_id="CORE-9")
    response = host_client.get("/launch/", {"token": mangle(token)})
    assert response.status_code == 400
    with scopes_disabled():
        assert not Member.objects.filter(external_id="CORE-9").exists()


@pytest.mark.django_db
def test_launch_link__expired_or_too_long_or_other_environment__is_refused(tenant, host_client):
    old = launch_link_build(
        environment=tenant.production, external_id="A", now=timezone.now() - timedelta(minutes=10)
    )
    assert host_client.get("/launch/", {"token": old}).status_code == 400
    long_lived = launch_link_build(
        environment=tenant.production, external_id="B", ttl=timedelta(days=1)
    )
    assert host_client.get("/launch/", {"token": long_lived}).status_code == 400
    staging_token = launch_link_build(environment=tenant.staging, external_id="C")
    assert host_client.get("/launch/", {"token": staging_token}).status_code == 400
    with scopes_disabled():
        assert not Member.objects.filter(external_id__in=["A", "B", "C"]).exists()


@pytest.mark.django_db
def test_launch_link__open_redirect__goes_home_instead(tenant, host_client):
    token = launch_link_build(environment=tenant.production, external_id="CORE-8")
    response = host_client.get("/launch/", {"token": token, "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_logout__ends_the_session(tenant, host_client):
    token = launch_link_build(environment=tenant.production, external_id="CORE-1")
    host_client.get("/launch/", {"token": token})
    assert host_client.get("/").status_code == 200
    assert host_client.get("/logout/").status_code == 405
    assert host_client.post("/logout/").status_code == 200
    assert host_client.get("/").status_code == 302


@pytest.mark.django_db
def test_session__ends_after_30_idle_minutes_and_activity_extends_it(tenant, host_client):
    from django.contrib.sessions.models import Session

    from institutions.middleware import SessionIdleMiddleware

    token = launch_link_build(environment=tenant.production, external_id="CORE-2")
    host_client.get("/launch/", {"token": token})
    key = host_client.session.session_key
    remaining = Session.objects.get(session_key=key).expire_date - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)
    # Activity after the touch interval extends the session to a full 30 minutes again.
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=10))
    session = host_client.session
    session[SessionIdleMiddleware.KEY] -= 61
    session.save()
    assert host_client.get("/").status_code == 200
    remaining = Session.objects.get(session_key=key).expire_date - timezone.now()
    assert remaining > timedelta(minutes=29)
    # Thirty idle minutes later the session is gone.
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert host_client.get("/").status_code == 302


@pytest.mark.django_db
def test_staff_visit__staging_any_member__production_test_members_only__audited(tenant):
    staff = staff_user(tenant.institution, "it")
    mock = MemberFactory(environment=tenant.staging)
    real = MemberFactory(environment=tenant.production, is_test=False)
    tester = MemberFactory(environment=tenant.production, is_test=True)
    url = member_visit_link_build(environment=tenant.staging, member=mock, actor=staff)
    client = Client(HTTP_HOST=tenant.staging.host)
    path = url.split(tenant.staging.host, 1)[1]
    assert client.get(path).status_code == 302
    assert client.session[MEMBER_SESSION_KEY] == mock.pk
    assert b"Staff visit" in client.get("/").content
    assert AuditEntry.objects.filter(action="visit", actor=staff, object_id=str(mock.pk)).exists()
    assert Client(HTTP_HOST=tenant.staging.host).get(path).status_code == 400  # single use
    from homes.services import LoginError

    with pytest.raises(LoginError):
        member_visit_link_build(environment=tenant.production, member=real, actor=staff)
    url = member_visit_link_build(environment=tenant.production, member=tester, actor=staff)
    client = Client(HTTP_HOST=tenant.production.host)
    assert client.get(url.split(tenant.production.host, 1)[1]).status_code == 302
    assert client.session[MEMBER_SESSION_KEY] == tester.pk


@pytest.mark.django_db
def test_staff_visit__link_asked_for_by_staff_of_another_institution__refused(tenant, other_tenant):
    from homes.services import LoginError

    member = MemberFactory(environment=tenant.staging)
    outsider = staff_user(other_tenant.institution, "it")
    revoked = staff_user(tenant.institution, "it")
    staff_role_revoke(institution=tenant.institution, user=revoked, role="it", actor=None)

    for actor in (outsider, revoked):
        with pytest.raises(LoginError) as refused:
            member_visit_link_build(environment=tenant.staging, member=member, actor=actor)
        assert refused.value.code == "forbidden"
    # Operators (platform staff) may visit any institution's staging members.
    operator = staff_user(None, is_superuser=True)
    assert "/visit/" in member_visit_link_build(
        environment=tenant.staging, member=member, actor=operator
    )


@pytest.mark.django_db
def test_erased_member__session_and_links_made_before_the_erasure__sign_nobody_in(tenant):
    from homes.services import member_erase
    from homes.services.login import tile_link_build

    environment = tenant.staging
    member = MemberFactory(environment=environment, email="gone@example.test")
    session = member_client(member)
    assert session.get("/").status_code == 200
    tile = tile_link_build(environment=environment, member=member, next_path="/")
    staff = staff_user(tenant.institution, "it")
    visit = member_visit_link_build(environment=environment, member=member, actor=staff)
    with environment_scope(environment):
        member_erase(environment=environment, member=member, actor_label="test")

    assert session.get("/")["Location"].startswith("/login/")
    for link in (tile, visit):
        fresh = Client(HTTP_HOST=environment.host)
        assert fresh.get(urlsplit(link).path).status_code == 400
        assert MEMBER_SESSION_KEY not in fresh.session
    assert not AuditEntry.objects.filter(action="visit", actor=staff).exists()


@pytest.mark.django_db
def test_staff_visit__forged_token__is_refused(tenant):
    response = Client(HTTP_HOST=tenant.staging.host).get("/visit/forged-token/")
    assert response.status_code == 400


@pytest.mark.django_db
def test_staff_visit__role_revoked_before_the_link_is_used__refused_like_an_invalid_link(tenant):
    """The link is valid five minutes; revoking the role leaves the user active and staff,
    so the link itself must be refused once its maker may no longer enter the admin."""
    environment = tenant.staging
    member = MemberFactory(environment=environment)
    staff = staff_user(tenant.institution, "it")
    admin_page = staff_client(staff, environment)
    link = admin_page.get(reverse("admin:homes_member_visit", args=[member.pk]))["Location"]
    path = urlsplit(link).path
    assert path.startswith("/visit/")

    staff_role_revoke(institution=tenant.institution, user=staff, role="it", actor=None)
    assert admin_page.get(reverse("admin:index")).status_code == 302  # the admin is closed
    member_pages = Client(HTTP_HOST=environment.host)

    response = member_pages.get(path)

    assert response.status_code == 400
    assert MEMBER_SESSION_KEY not in member_pages.session
    assert not AuditEntry.objects.filter(action="visit", actor=staff).exists()


def _revoke_role(tenant, staff):
    staff_role_revoke(institution=tenant.institution, user=staff, role="it", actor=None)


def _deactivate(tenant, staff):
    staff.is_active = False
    staff.save(update_fields=["is_active"])


@pytest.mark.django_db
@pytest.mark.parametrize("lose_access", [_revoke_role, _deactivate], ids=["revoked", "deactivated"])
def test_staff_visit__staff_loses_access_during_the_visit__the_session_signs_nobody_in(
    tenant, lose_access
):
    """A visit's member session ends once its staff member may no longer enter the
    environment (role revoked, account deactivated), as the visit link itself would."""
    environment = tenant.staging
    member = MemberFactory(environment=environment)
    staff = staff_user(tenant.institution, "it")
    admin_page = staff_client(staff, environment)
    link = admin_page.get(reverse("admin:homes_member_visit", args=[member.pk]))["Location"]
    member_pages = Client(HTTP_HOST=environment.host)
    assert member_pages.get(urlsplit(link).path).status_code == 302
    assert b"Staff visit" in member_pages.get("/").content

    lose_access(tenant, staff)
    assert admin_page.get(reverse("admin:index")).status_code == 302  # the admin is closed

    response = member_pages.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert MEMBER_SESSION_KEY not in member_pages.session


@pytest.mark.django_db
def test_staff_visit__production_member_no_longer_a_test_member__the_session_ends(tenant):
    """In production staff may visit test members only: a member unmarked as a test member
    during the visit is no longer shown to the staff member."""
    environment = tenant.production
    member = MemberFactory(environment=environment, is_test=True)
    staff = staff_user(tenant.institution, "it")
    link = staff_client(staff, environment).get(
        reverse("admin:homes_member_visit", args=[member.pk])
    )["Location"]
    member_pages = Client(HTTP_HOST=environment.host)
    assert member_pages.get(urlsplit(link).path).status_code == 302
    assert b"Staff visit" in member_pages.get("/").content

    member.is_test = False
    member.save(update_fields=["is_test"])
    response = member_pages.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert MEMBER_SESSION_KEY not in member_pages.session


@pytest.mark.django_db(transaction=True)
def test_magic_link__asked_for_from_a_member_page__opens_that_page_after_signing_in(tenant):
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    client = Client(HTTP_HOST=tenant.production.host)
    login_url = client.get("/offers/")["Location"]
    assert login_url == "/login/?next=%2Foffers%2F"
    assert 'name="next" value="/offers/"' in client.get(login_url).content.decode()
    client.post(login_url, {"email": member.email, "next": "/offers/"})
    response = client.post(_link_path(mail.outbox[0]))
    assert response.status_code == 302
    assert response["Location"] == "/offers/"
    assert client.session[MEMBER_SESSION_KEY] == member.pk


@pytest.mark.django_db(transaction=True)
def test_magic_link__opened_on_another_device__still_opens_the_page_asked_for(tenant):
    """Asked for on a computer, read on a phone: the page comes with the link, not with
    the computer's session."""
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    computer = Client(HTTP_HOST=tenant.production.host)
    computer.post("/login/?next=%2Foffers%2F", {"email": member.email, "next": "/offers/"})
    phone = Client(HTTP_HOST=tenant.production.host)
    response = phone.post(_link_path(mail.outbox[0]))
    assert response.status_code == 302
    assert response["Location"] == "/offers/"
    assert phone.session[MEMBER_SESSION_KEY] == member.pk
    # Asked for again without a page: the new link opens the dashboard.
    computer.post("/login/", {"email": member.email})
    assert phone.post(_link_path(mail.outbox[1]))["Location"] == "/"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "offers/"]
)
def test_magic_link__next_not_a_path_of_this_host__goes_home(tenant, target):
    member = MemberFactory(environment=tenant.production, email="ada@example.test")
    client = Client(HTTP_HOST=tenant.production.host)
    client.post("/login/", {"email": member.email, "next": target})
    assert client.post(_link_path(mail.outbox[0]))["Location"] == "/"


@pytest.mark.django_db
def test_member_required__query_string_with_two_parameters__kept_whole_in_next(tenant):
    from urllib.parse import parse_qs, urlsplit

    client = Client(HTTP_HOST=tenant.production.host)
    response = client.get("/offers/", {"value": "350000", "utm_source": "email"})
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["next"] == ["/offers/?value=350000&utm_source=email"]


class CountingHandler(SinkHandler):
    """Counts every RCPT the server is asked for (refused ones too)."""

    def __init__(self):
        super().__init__()
        self.rcpt_attempts: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts.append(address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def counting_smtp(settings):
    sink = SMTPSink()
    sink.handler = CountingHandler()
    sink.controller.handler = sink.handler
    sink.controller.start()
    smtp_at(settings, sink.port)
    yield sink
    sink.controller.stop()


@pytest.mark.django_db
def test_magic_link__server_refuses_the_address_550__bounce_recorded_not_retried(
    tenant, counting_smtp, django_capture_on_commit_callbacks
):
    """A member asks for a sign-in link; the mail server refuses the address (550 no such
    user). The task treats the refusal like a network error (SMTPRecipientsRefused is an
    OSError): it asks the server five more times, then gives up with nothing recorded but
    a log line. The member waits for a link that never comes and staff see nothing. A hard
    bounce of account mail must be recorded on the member like any other bounce (the
    profile's bounced address), not just retried and dropped."""
    from notifications.models import NotificationProfile

    env = tenant.production
    member = MemberFactory(environment=env, email="bounce-me@example.test")
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        magic_link_issue(environment=env, email=member.email, client="198.51.100.7")  # no Retry
    with environment_scope(env):
        profile = NotificationProfile.objects.get(member=member)
    assert counting_smtp.handler.rcpt_attempts == ["bounce-me@example.test"]
    assert profile.email_bounced_at is not None
    assert profile.email_bounced_address == "bounce-me@example.test"
    assert profile.email_bounce_reason.startswith("550 5.1.1 No such user here")


@pytest.mark.django_db
def test_magic_link__server_answers_451__retried_with_the_same_link(
    tenant, counting_smtp, django_capture_on_commit_callbacks
):
    env = tenant.production
    member = MemberFactory(environment=env, email="ada@example.test")
    counting_smtp.handler.transient.add("ada@example.test")
    # Eager tasks raise the retry they ask for; a worker would run it after its countdown.
    with (
        environment_scope(env),
        pytest.raises(Retry) as retry,
        django_capture_on_commit_callbacks(execute=True),
    ):
        magic_link_issue(environment=env, email=member.email, client="198.51.100.7")
    counting_smtp.handler.transient.clear()  # the server takes mail again
    retry.value.sig.apply()
    retry.value.sig.apply()  # and a redelivery of the same task
    first, second = (
        re.search(r"https?://[^/]+(/login/[^/\s]+/)", m.get_body(("plain",)).get_content())[1]
        for m in counting_smtp.to("ada@example.test")
    )
    assert first == second
    with scopes_disabled():
        assert MagicLinkToken.objects.filter(member=member).count() == 1
    assert Client(HTTP_HOST=env.host).post(first).status_code == 302


@pytest.mark.django_db
def test_magic_link__staging_member_not_allowlisted__goes_to_the_staging_sink_not_the_real_server(
    tenant, counting_smtp, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Staging never reaches a real inbox: every staging email that is not for an
    allowlisted test address goes to the staging sink. The sign-in link task sends through
    the platform's real mail server whatever the environment, so a staging member (e.g.
    synced through the API with a staging key, with a real address) receives staging mail
    in their real inbox."""
    settings.NOTIFICATIONS_STAGING_EMAIL_URL = f"filemail:///{tmp_path}"
    env = tenant.staging
    member = MemberFactory(environment=env, email="alice@example.test")
    with environment_scope(env), django_capture_on_commit_callbacks(execute=True):
        magic_link_issue(environment=env, email=member.email, client="198.51.100.7")
    assert counting_smtp.to("alice@example.test") == []
    (written,) = tmp_path.iterdir()
    assert f"{env.base_url}/login/" in written.read_text()
