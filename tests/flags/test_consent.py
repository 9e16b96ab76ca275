"""Members' analytics consent: the control on member pages, the beacon, and destinations."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flags.models import AnalyticsConsent, DestinationBatch, Event
from flags.services import destinations as dest
from flags.services.plans import analytics_consent_set, analytics_consent_text
from homes.services import member_erase
from institutions import events
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory
from tests.flags.factories import DestinationFactory
from tests.flags.test_destinations import Receiver, later

PREFERENCES = "/notifications/preferences/"
CONSENT = "/privacy/analytics/"
BEACON_SCRIPT = b"flags/beacon.js"


def answer(client, value, next_page=PREFERENCES):
    return client.post(CONSENT, {"answer": value, "next": next_page})


@pytest.mark.django_db
def test_consent_control__on_the_preferences_page__records_the_answer_and_its_words(tenant):
    env = tenant.production
    member = MemberFactory(environment=env)
    client = member_client(member)
    page = client.get(PREFERENCES)
    assert page.status_code == 200
    assert b"May we use how you use these pages" in page.content
    assert b"You have not answered yet" in page.content
    assert BEACON_SCRIPT not in page.content  # nothing is sent before a yes

    response = answer(client, "yes")
    assert response.status_code == 302
    assert response["Location"] == f"{PREFERENCES}?analytics=saved#analytics"
    page = client.get(response["Location"])
    assert b"Saved. Thank you." in page.content
    assert b"You said yes." in page.content
    assert BEACON_SCRIPT in page.content  # the member pages now carry the beacon
    with environment_scope(env):
        consent = AnalyticsConsent.objects.get(member=member)
        assert (consent.granted, consent.source) == (True, "member pages")
        assert consent.text_shown == analytics_consent_text(True)
        assert "Yes, use how I use these pages" in consent.text_shown

    answer(client, "no")
    page = client.get(PREFERENCES)
    assert b"You said no." in page.content
    assert BEACON_SCRIPT not in page.content
    with environment_scope(env):
        audited = AuditEntry.objects.filter(
            environment=env, object_type="flags.AnalyticsConsent"
        ).order_by("id")
        assert [e.changes["granted"]["after"] for e in audited] == [True, False]
        assert "No, do not use" in audited.last().changes["text_shown"]["after"]


@pytest.mark.django_db
def test_consent_control__no_answer_or_foreign_next__clear_error_or_safe_redirect(tenant):
    env = tenant.production
    member = MemberFactory(environment=env)
    client = member_client(member)
    response = client.post(CONSENT, {"answer": "maybe"})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    response = client.post(CONSENT, {})
    assert response.status_code == 400
    assert b"Choose yes or no." in response.content
    with environment_scope(env):
        assert not AnalyticsConsent.objects.exists()
    response = answer(client, "yes", next_page="https://evil.example/")
    assert response["Location"].startswith(f"{CONSENT}?analytics=saved")


@pytest.mark.django_db
def test_consent_page__signed_out__sends_to_login(tenant):
    from django.test import Client

    response = Client(HTTP_HOST=tenant.production.host).get(CONSENT)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db
def test_destination_requiring_consent__forwards_only_members_who_said_yes_on_the_page(tenant):
    env = tenant.production
    yes, no, silent = (MemberFactory(environment=env) for _ in range(3))
    answer(member_client(yes), "yes")
    answer(member_client(no), "no")
    for member in (yes, no, silent):
        events.emit(environment=env, name="dashboard_viewed", member=member)
    with Receiver() as receiver, environment_scope(env):
        DestinationFactory(environment=env, url=receiver.url, enabled=True, require_consent=True)
        dest.destinations_forward(environment=env, now=later())
        assert Event.objects.filter(name="dashboard_viewed").count() == 3
    assert [e["member_id"] for e in receiver.events()] == [yes.pk]


@pytest.mark.django_db
def test_staff_visit__member_who_said_yes__no_beacon_and_nothing_recorded(tenant):
    from homes.middleware import VISITED_BY_SESSION_KEY
    from tests.factories import staff_user

    env = tenant.staging  # in production staff visit test members only
    member = MemberFactory(environment=env)
    client = member_client(member)
    answer(client, "yes")
    session = client.session
    session[VISITED_BY_SESSION_KEY] = staff_user(tenant.institution, "admin").pk
    session.save()
    assert BEACON_SCRIPT not in client.get(PREFERENCES).content
    response = client.post(
        "/events/beacon/",
        data='{"events": [{"name": "page_viewed", "properties": {"path": "/"}}]}',
        content_type="application/json",
        HTTP_ORIGIN=f"http://{env.host}",
    )
    assert response.status_code == 403
    with environment_scope(env):
        assert not Event.objects.filter(name="page_viewed").exists()


def _failed_batch(env, receiver, **destination):
    """A webhook whose first batch could not be sent (the endpoint was down)."""
    DestinationFactory(environment=env, url=receiver.url, enabled=True, **destination)
    now = later()
    assert dest.destinations_forward(environment=env, now=now)["failed"] == 1
    return now + timedelta(hours=1)  # the retry is due


def _delivered_after(receiver, posts: int) -> list[dict]:
    return [event for _, body in receiver.bodies[posts:] for event in json.loads(body)["events"]]


@pytest.mark.django_db
def test_webhook_requiring_consent__member_says_no_before_the_retry__event_not_sent(tenant):
    """The event was batched while the member allowed analytics; the endpoint was down; the
    member then answered "No". The retry must not send their event where consent is
    required; another member's event in the same batch still goes."""
    env = tenant.production
    leaving, staying = MemberFactory(environment=env), MemberFactory(environment=env)
    with environment_scope(env):
        for member in (leaving, staying):
            analytics_consent_set(environment=env, member=member, granted=True)
    for member in (leaving, staying):
        events.emit(environment=env, name="dashboard_viewed", member=member)
    with Receiver(mode="fail") as receiver, environment_scope(env):
        retry_at = _failed_batch(env, receiver, require_consent=True)
        analytics_consent_set(environment=env, member=leaving, granted=False)
        posts = len(receiver.bodies)
        receiver.mode = "ok"  # the endpoint is back
        assert dest.destinations_forward(environment=env, now=retry_at)["sent"] == 1
        batch = DestinationBatch.objects.get()
    assert [e["member_id"] for e in _delivered_after(receiver, posts)] == [staying.pk]
    assert (batch.status, batch.event_count) == (DestinationBatch.Status.SENT, 1)
    assert leaving.pk not in {e["member_id"] for e in batch.payload}


@pytest.mark.django_db
def test_webhook__member_erased_before_the_retry__event_not_sent_empty_batch_not_posted(tenant):
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="dashboard_viewed", member=member)
    with Receiver(mode="fail") as receiver, environment_scope(env):
        retry_at = _failed_batch(env, receiver, require_consent=False)
        member_erase(environment=env, member=member)
        posts = len(receiver.bodies)
        receiver.mode = "ok"
        assert dest.destinations_forward(environment=env, now=retry_at)["sent"] == 1
        batch = DestinationBatch.objects.get()
    assert len(receiver.bodies) == posts  # nothing left to send: not posted
    assert (batch.status, batch.event_count, batch.payload) == (DestinationBatch.Status.SENT, 0, [])


@pytest.mark.django_db
def test_staff_visit__test_member_who_said_yes__beacon_records_test_activity(tenant):
    """In production staff visit only as a test member: the page events of the visit are
    that test member's test activity, recorded with is_test like the rest."""
    from homes.middleware import VISITED_BY_SESSION_KEY
    from tests.factories import staff_user

    env = tenant.production
    tester = MemberFactory(environment=env, is_test=True)
    client = member_client(tester)
    answer(client, "yes")
    session = client.session
    session[VISITED_BY_SESSION_KEY] = staff_user(tenant.institution, "admin").pk
    session.save()
    assert BEACON_SCRIPT in client.get(PREFERENCES).content
    response = client.post(
        "/events/beacon/",
        data='{"events": [{"name": "page_viewed", "properties": {"path": "/"}}]}',
        content_type="application/json",
        HTTP_ORIGIN=f"http://{env.host}",
    )
    assert response.status_code == 202
    with environment_scope(env):
        event = Event.objects.get(name="page_viewed")
    assert (event.member_id, event.is_test) == (tester.pk, True)
