"""Web Push against a local push service that decrypts (RFC 8291) and checks VAPID (RFC 8292)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from institutions.tenancy import environment_scope
from notifications.channels.push import b64url, b64url_decode, vapid_key_generate
from notifications.models import ConsentRecord, Delivery, PushSubscription
from notifications.services.campaigns import appointment_message_send
from notifications.services.sending import deliveries_send_claimed
from tests.conftest import member_client
from tests.notifications.helpers import deliveries, members, planned, reclaimed, run_campaign

pytestmark = pytest.mark.django_db


class Browser:
    """A browser's push subscription: its own key pair and auth secret."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.p256dh = b64url(
            self.private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self.auth_bytes = b"0123456789abcdef"
        self.auth = b64url(self.auth_bytes)


class PushService:
    def __init__(self):
        self.received: list[dict] = []
        self.browsers: dict[str, Browser] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.startswith("/gone/"):
                    self.send_response(410)
                    self.end_headers()
                    return
                browser = service.browsers[self.path]
                plain = http_ece.decrypt(
                    body,
                    private_key=browser.private,
                    auth_secret=browser.auth_bytes,
                    version="aes128gcm",
                )
                service.received.append(
                    {
                        "path": self.path,
                        "payload": json.loads(plain),
                        "authorization": self.headers["Authorization"],
                        "encoding": self.headers["Content-Encoding"],
                        "ttl": self.headers["TTL"],
                        "topic": self.headers.get("Topic"),
                    }
                )
                self.send_response(201)
                self.send_header("Location", f"{self.path}/msg/{len(service.received)}")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def endpoint(self, name: str, browser: Browser) -> str:
        self.browsers[f"/push/{name}"] = browser
        return f"{self.origin}/push/{name}"


@pytest.fixture
def push_service():
    service = PushService()
    service.thread.start()
    yield service
    service.server.shutdown()


def verify_vapid(authorization: str, audience: str) -> tuple[dict, str]:
    """Check the VAPID JWT (ES256) against the key it names; return its claims and the key."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    header_b64, claims_b64, signature_b64 = fields["t"].split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64url_decode(fields["k"])
    )
    raw = b64url_decode(signature_b64)
    signature = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public.verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(b64url_decode(header_b64))["alg"] == "ES256"
    claims = json.loads(b64url_decode(claims_b64))
    assert claims["aud"] == audience
    assert claims["exp"] > time.time()
    assert claims["sub"].startswith("mailto:")
    return claims, fields["k"]


def subscribe(client, endpoint: str, browser: Browser):
    return client.post(
        "/notifications/push/subscribe/",
        data=json.dumps(
            {"endpoint": endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}
        ),
        content_type="application/json",
    )


def test_push__home_value_update__arrives_decrypted_with_valid_vapid(
    tenant, push_service, django_capture_on_commit_callbacks
):
    env = tenant.production
    with environment_scope(env):
        vapid = vapid_key_generate(environment=env)
    (member,) = members(env, 1, first_name="Ada")
    browser = Browser()
    response = subscribe(member_client(member), push_service.endpoint("ada", browser), browser)
    assert response.status_code == 201, response.content
    with environment_scope(env):
        assert ConsentRecord.objects.filter(member=member, channel="push", granted=True).exists()

    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])

    rows = {d.channel: d for d in deliveries(env, member=member)}
    assert rows["push"].state == Delivery.State.SENT, rows["push"].last_error
    (received,) = push_service.received
    assert received["encoding"] == "aes128gcm"
    assert received["topic"] == f"d{rows['push'].pk}"
    payload = received["payload"]
    assert payload["title"] == f"Your home: about ${400000 + member.pk * 10:,}"
    assert payload["url"] == f"{env.base_url}/"
    _, key = verify_vapid(received["authorization"], push_service.origin)
    assert key == vapid.public_key
    with environment_scope(env):
        # The private key is stored encrypted, never in clear.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT private_key FROM notifications_vapidkey WHERE id = %s", [vapid.pk]
            )
            stored = cursor.fetchone()[0]
        assert "PRIVATE KEY" not in stored
        assert "PRIVATE KEY" in vapid.private_key


def test_push__gone_subscription__is_removed_and_delivery_fails_visibly(
    tenant, push_service, django_capture_on_commit_callbacks
):
    env = tenant.production
    with environment_scope(env):
        vapid_key_generate(environment=env)
    (member,) = members(env, 1)
    browser = Browser()
    subscribe(member_client(member), f"{push_service.origin}/gone/1", browser)
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    (row,) = deliveries(env, member=member, channel="push")
    assert row.state == Delivery.State.FAILED
    assert "410" in row.reason
    with environment_scope(env):
        assert not PushSubscription.objects.filter(member=member).exists()


def test_push_subscribe__invalid_keys__answers_400_and_stores_nothing(tenant):
    (member,) = members(tenant.production, 1)
    client = member_client(member)
    bad = client.post(
        "/notifications/push/subscribe/",
        data=json.dumps(
            {"endpoint": "https://push.example.test/x", "keys": {"p256dh": "nope", "auth": "x"}}
        ),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "P-256" in bad.json()["errors"]["__all__"][0]
    assert (
        client.post(
            "/notifications/push/subscribe/", data="{", content_type="application/json"
        ).status_code
        == 400
    )
    missing = client.post(
        "/notifications/push/subscribe/", data="{}", content_type="application/json"
    )
    assert set(missing.json()["errors"]) == {"endpoint", "p256dh", "auth"}
    with environment_scope(tenant.production):
        assert not PushSubscription.objects.exists()


def test_push_unsubscribe__removes_the_device_and_records_consent(tenant):
    (member,) = members(tenant.production, 1)
    client = member_client(member)
    browser = Browser()
    subscribe(client, "https://push.example.test/abc", browser)
    response = client.post(
        "/notifications/push/unsubscribe/",
        data=json.dumps({"endpoint": "https://push.example.test/abc"}),
        content_type="application/json",
    )
    assert response.json() == {"removed": True}
    with environment_scope(tenant.production):
        assert not PushSubscription.objects.exists()
        assert ConsentRecord.objects.filter(member=member, channel="push", granted=False).exists()


def test_push_subscription_taken_over_by_another_member__consent_moves_with_it(
    tenant, push_service
):
    """A shared browser: the second member to turn notifications on gets its pushes from
    then on, with the consent record that says they agreed; the first member's record
    says they stopped on this device."""
    env = tenant.production
    first, second = members(env, 2)
    browser = Browser()
    endpoint = push_service.endpoint("family-laptop", browser)
    assert subscribe(member_client(first), endpoint, browser).status_code == 201
    assert subscribe(member_client(second), endpoint, browser).status_code == 201
    assert subscribe(member_client(second), endpoint, browser).status_code == 201  # again
    with environment_scope(env):
        assert PushSubscription.objects.get().member_id == second.pk
        granted = ConsentRecord.objects.filter(
            member=second, channel="push", granted=True, method=ConsentRecord.Method.PUSH_PROMPT
        )
        assert granted.count() == 4  # one per category, recorded once
        (stopped,) = ConsentRecord.objects.filter(member=first, channel="push", granted=False)
        assert stopped.method == ConsentRecord.Method.PUSH_PROMPT


def test_push__worker_slower_than_its_lease__sends_nothing_once_reclaimed(
    tenant, push_service, django_capture_on_commit_callbacks
):
    """To a push service, a claim the sweeper released is not sent by its old worker:
    the member's device shows the update once."""
    env = tenant.production
    with environment_scope(env):
        vapid_key_generate(environment=env)
    (member,) = members(env, 1)
    browser = Browser()
    endpoint = push_service.endpoint("phone", browser)
    assert subscribe(member_client(member), endpoint, browser).status_code == 201
    planned(django_capture_on_commit_callbacks, env, "home_value", [member])
    ids = [d.pk for d in deliveries(env, channel="push")]
    slow, fresh = reclaimed(django_capture_on_commit_callbacks, env, ids)
    with environment_scope(env):
        assert deliveries_send_claimed(environment=env, claimed=fresh).sent == 1
        late = deliveries_send_claimed(environment=env, claimed=slow)

    # One notification on the member's phone, not two.
    assert len(push_service.received) == 1
    assert late.sent == 0


def test_service_worker__served_for_the_whole_host(tenant):
    (member,) = members(tenant.production, 1)
    response = member_client(member).get("/notifications/sw.js")
    assert response["Content-Type"] == "application/javascript"
    assert response["Service-Worker-Allowed"] == "/"
    assert b"showNotification" in response.content


def test_staging_push__goes_to_the_sink_not_the_device(
    tenant, push_service, tmp_path, settings, django_capture_on_commit_callbacks
):
    env = tenant.staging
    settings.NOTIFICATIONS_STAGING_PUSH_SINK = str(tmp_path / "push.jsonl")
    with environment_scope(env):
        vapid_key_generate(environment=env)
    (member,) = members(env, 1)
    browser = Browser()
    member.environment = env
    client = member_client(member)
    assert subscribe(client, push_service.endpoint("s", browser), browser).status_code == 201
    run_campaign(django_capture_on_commit_callbacks, env, "home_value", [member])
    assert push_service.received == []
    (line,) = (tmp_path / "push.jsonl").read_text().splitlines()
    assert json.loads(line)["member"] == member.pk


def test_appointment_message__carries_the_calendar_invitation(
    tenant, smtp_settings, django_capture_on_commit_callbacks
):
    env = tenant.production
    (member,) = members(env, 1)
    ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        rows = appointment_message_send(
            environment=env,
            member=member,
            kind="confirmation",
            context={"appointment_id": 7, "when": "Thursday 10:30", "officer": "Sam"},
            attachments=[("invite.ics", ics, "text/calendar; method=REQUEST")],
        )
        again = appointment_message_send(
            environment=env,
            member=member,
            kind="confirmation",
            context={"appointment_id": 7, "when": "Thursday 10:30", "officer": "Sam"},
            attachments=[("invite.ics", ics, "text/calendar; method=REQUEST")],
        )
    assert [r.pk for r in rows] == [r.pk for r in again]
    (message,) = smtp_settings.messages
    _, parsed = message
    calendar = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "REQUEST"
    assert "METHOD:REQUEST" in calendar.get_content()
    assert "Thursday 10:30" in parsed.get_body(("plain",)).get_content()


def test_push__endpoint_on_an_inside_address__refused_at_subscribe_and_at_send(
    tenant, push_service, settings
):
    """A push endpoint is whatever a member's browser sends: the platform posts to public
    addresses only (development and the tests allow this machine's)."""
    from notifications.channels.push import PushRejected, push_send
    from tests.notifications.factories import PushSubscriptionFactory

    env = tenant.production
    with environment_scope(env):
        vapid = vapid_key_generate(environment=env)
    (member,) = members(env, 1)
    browser = Browser()
    endpoint = push_service.endpoint("ada", browser)
    settings.OUTBOUND_PRIVATE_ALLOWED = False
    response = subscribe(member_client(member), endpoint, browser)
    assert response.status_code == 400
    assert "not a public internet address" in response.content.decode()
    # One stored before the rule (or whose name now resolves inside) is refused at send,
    # for good: waiting will not make the address public.
    subscription = PushSubscriptionFactory(
        environment=env, member=member, endpoint=endpoint, p256dh=browser.p256dh, auth=browser.auth
    )
    with pytest.raises(PushRejected, match="not a public internet address"):
        push_send(
            vapid=vapid, subscription=subscription, payload={}, subject="mailto:x@y.z", topic="t"
        )
    assert push_service.received == []
