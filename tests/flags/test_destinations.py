"""Destinations: a signed webhook on a local server, filters, retries, dead letters, files."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from flags.models import AnalyticsSummary, Destination, DestinationBatch, Event
from flags.services import destinations as dest
from flags.services.events import events_ingest
from flags.services.exports import (
    analytics_summarize_day,
    exports_run,
    partition_dir,
    warehouse_export_day,
)
from flags.services.plans import analytics_consent_set
from institutions import events
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.flags.factories import DestinationBatchFactory, DestinationFactory

OFFER = {"offer_id": 7, "offer_kind": "heloc"}


class Receiver:
    """A local HTTP endpoint that records what it receives (or fails, hangs, babbles, has
    moved, or holds the first POST open until released)."""

    def __init__(self, mode="ok"):
        self.mode = mode
        self.bodies: list[tuple[dict, bytes]] = []
        self.requests: list[tuple[str, str]] = []
        self.first_arrived, self.release = threading.Event(), threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.command, self.path))
                if receiver.mode == "moved" and self.path == "/events":
                    self.send_response(301)
                    self.send_header("Location", "/new")
                    self.end_headers()
                    return
                if receiver.mode == "hang":
                    time.sleep(0.6)
                if receiver.mode == "slow" and not receiver.first_arrived.is_set():
                    receiver.first_arrived.set()
                    receiver.release.wait(5)
                receiver.bodies.append((dict(self.headers), body))
                if receiver.mode == "garbage":  # not HTTP at all: http.client.BadStatusLine
                    self.wfile.write(b"garbage\r\n\r\n")
                    self.close_connection = True
                    return
                self.send_response(200 if receiver.mode in ("ok", "moved", "slow") else 503)
                self.end_headers()

            def do_GET(self):  # how urllib would follow a redirected POST: without its body
                receiver.requests.append((self.command, self.path))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def events(self):
        return [e for _, body in self.bodies for e in json.loads(body)["events"]]


def later():
    return timezone.now() + timedelta(minutes=5)  # past the batching safety lag


@pytest.mark.django_db
def test_webhook__local_server__receives_signed_events_and_never_a_test_members(tenant):
    env = tenant.production
    real, tester = MemberFactory(environment=env), MemberFactory(environment=env, is_test=True)
    for member in (real, tester, real):
        events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    with Receiver() as receiver, environment_scope(env):
        DestinationFactory(environment=env, url=receiver.url, secret="k3y", enabled=True)
        assert dest.destinations_forward(environment=env, now=later()) == {"sent": 1, "failed": 0}
    received = receiver.events()
    assert len(received) == 2
    assert {e["member_id"] for e in received} == {real.pk}
    headers, body = receiver.bodies[0]
    timestamp = headers["X-Chimney-Signature"].split(",")[0][2:]
    expected = hmac.new(b"k3y", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Chimney-Signature"].endswith(f"v1={expected}")


@pytest.mark.django_db
def test_batching__lower_id_received_later__waits_for_the_lag_and_is_not_skipped(tenant):
    # An offer selection is written at once (id a, received T+20 s); a page view viewed at
    # T and held in the buffer is written after it (id b > a, received T).
    env = tenant.production
    member = MemberFactory(environment=env)
    t = timezone.now()
    events.emit(environment=env, name="offer_selected", member=member, properties=OFFER)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    with Receiver() as receiver, environment_scope(env):
        selected, viewed = Event.objects.order_by("pk")
        assert (selected.name, viewed.name) == ("offer_selected", "offer_viewed")
        Event.objects.filter(pk=selected.pk).update(received_at=t + timedelta(seconds=20))
        Event.objects.filter(pk=viewed.pk).update(received_at=t)
        destination = DestinationFactory(environment=env, url=receiver.url, enabled=True)
        # The lag has passed for the view but not for the selection: neither goes yet,
        # since the selection comes first in id order.
        dest.destinations_forward(environment=env, now=t + timedelta(seconds=35))
        destination.refresh_from_db()
        assert (receiver.events(), destination.cursor) == ([], 0)
        dest.destinations_forward(environment=env, now=t + timedelta(seconds=55))
        destination.refresh_from_db()
    assert [e["id"] for e in receiver.events()] == [selected.pk, viewed.pk]
    assert destination.cursor == viewed.pk


@pytest.mark.django_db
def test_webhook__answer_that_is_not_http__a_counted_failure_and_the_next_webhook_served(tenant):
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    with Receiver(mode="garbage") as broken, Receiver() as healthy, environment_scope(env):
        bad = DestinationFactory(environment=env, name="a-broken", url=broken.url, enabled=True)
        DestinationFactory(environment=env, name="b-healthy", url=healthy.url, enabled=True)
        assert dest.destinations_forward(environment=env, now=later()) == {"sent": 1, "failed": 1}
        bad.refresh_from_db()
        batch = bad.batches.get()
    assert (batch.status, batch.attempts) == ("pending", 1)
    assert "BadStatusLine" in batch.last_error
    assert bad.state == Destination.State.FAILING
    assert [e["member_id"] for e in healthy.events()] == [member.pk]


@pytest.mark.django_db
def test_webhook__endpoint_answers_301__a_retried_failure_that_names_the_new_address(tenant):
    """A webhook whose URL now answers 301 (moved) gets its batch replayed by urllib as a
    bodiless GET to the new address; the 200 from that GET marks the batch "sent", so
    staff see a healthy destination while the receiver never got a single event (lost).
    A batch must only count as sent when the POST carrying its events was accepted."""
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    with Receiver(mode="moved") as receiver, environment_scope(env):
        moved = DestinationFactory(environment=env, url=receiver.url, enabled=True)
        assert dest.destinations_forward(environment=env, now=later()) == {"sent": 0, "failed": 1}
        moved.refresh_from_db()
        batch = moved.batches.get()
    assert receiver.requests == [("POST", "/events")]  # the redirect is not followed
    assert (batch.status, batch.attempts) == ("pending", 1)
    assert moved.state == Destination.State.FAILING
    new_address = receiver.url.removesuffix("/events") + "/new"
    assert f"redirected (301) to {new_address}" in moved.last_error


def test_webhook__two_runs_overlap__each_batch_posted_once(transactional_db, tenant):
    """Beat queues flags.destinations_forward every minute; when one run is still waiting
    on a slow endpoint (or a lost worker's message is redelivered), a second run picks the
    same pending batch and POSTs it again: the institution's analytics receive the same
    events twice. A batch in flight must be claimed so that only one run sends it."""
    from django.db import connection

    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    now = later()
    with Receiver(mode="slow") as receiver:
        with environment_scope(env):
            DestinationFactory(environment=env, url=receiver.url, enabled=True)

        def first_run():
            try:
                with environment_scope(env):
                    dest.destinations_forward(environment=env, now=now)
            finally:
                connection.close()

        thread = threading.Thread(target=first_run)
        thread.start()
        try:
            assert receiver.first_arrived.wait(5), "the first run never POSTed"
            with environment_scope(env):
                overlapping = dest.destinations_forward(environment=env, now=now)
        finally:
            receiver.release.set()
            thread.join(10)
        with environment_scope(env):
            batch = DestinationBatch.objects.get()
    assert overlapping == {"sent": 0, "failed": 0}
    assert [headers["X-Chimney-Batch"] for headers, _ in receiver.bodies] == [str(batch.pk)]
    assert batch.status == DestinationBatch.Status.SENT


@pytest.mark.django_db
def test_filters__allow_deny_rules_and_consent__decide_what_is_forwarded(tenant):
    env = tenant.production
    yes, no = MemberFactory(environment=env), MemberFactory(environment=env)
    with environment_scope(env):
        analytics_consent_set(environment=env, member=yes, granted=True)
        analytics_consent_set(environment=env, member=no, granted=False)
    for member in (yes, no):
        events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
        events.emit(
            environment=env,
            name="offer_selected",
            member=member,
            properties={"offer_id": 8, "offer_kind": "pmi_removal"},
        )
        events.emit(environment=env, name="dashboard_viewed", member=member)
    with Receiver() as receiver, environment_scope(env):
        DestinationFactory(
            environment=env,
            url=receiver.url,
            enabled=True,
            allow_events=["offer_viewed", "offer_selected", "dashboard_viewed"],
            deny_events=["dashboard_viewed"],
            rules=[{"property": "offer_kind", "op": "in", "value": ["heloc"]}],
            require_consent=True,
        )
        dest.destinations_forward(environment=env, now=later())
    assert [(e["name"], e["member_id"]) for e in receiver.events()] == [("offer_viewed", yes.pk)]


@pytest.mark.django_db
def test_webhook__failing_then_timing_out__retries_dead_letters_disables_and_loses_nothing(
    tenant, monkeypatch
):
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    monkeypatch.setattr(dest, "DISABLE_AFTER_FAILURES", 5)
    with Receiver(mode="fail") as receiver, environment_scope(env):
        destination = DestinationFactory(
            environment=env, url=receiver.url, enabled=True, timeout_seconds=0.2
        )
        now = later()
        assert dest.destinations_forward(environment=env, now=now)["failed"] == 1
        batch = DestinationBatch.objects.get()
        destination.refresh_from_db()
        assert (batch.status, batch.attempts) == ("pending", 1)
        assert batch.next_attempt_at == now + timedelta(seconds=30)
        assert destination.state == "failing"
        # Not due yet: nothing is tried before the backoff ends.
        assert dest.destinations_forward(environment=env, now=now)["failed"] == 0
        receiver.mode = "hang"  # now it times out
        for attempt in range(2, 6):
            now = now + dest.backoff(attempt - 1) + timedelta(seconds=1)
            dest.destinations_forward(environment=env, now=now)
        batch.refresh_from_db()
        destination.refresh_from_db()
    assert batch.status == "dead"
    assert batch.attempts == 5
    assert "timed out" in batch.last_error.lower() or "timeout" in batch.last_error.lower()
    assert destination.state == Destination.State.DISABLED
    assert "Timeout" in destination.last_error or "timed out" in destination.last_error
    # Re-enabled against a healthy endpoint, the dead letter is delivered after all.
    with Receiver() as healthy, environment_scope(env):
        destination.url = healthy.url
        destination.save()
        assert dest.destination_reenable(environment=env, destination=destination, actor=None) == 1
        dest.destinations_forward(environment=env, now=later())
        batch.refresh_from_db()
    assert batch.status == "sent"
    assert [e["member_id"] for e in healthy.events()] == [member.pk]


@pytest.mark.django_db
def test_destination_reenable__in_production__lifts_the_disable_but_enabled_comes_by_release(
    tenant,
):
    env = tenant.production
    with environment_scope(env):
        tripped = DestinationFactory(environment=env, enabled=True, state="disabled")
        DestinationBatchFactory(environment=env, destination=tripped, status="dead")
        assert dest.destination_reenable(environment=env, destination=tripped, actor=None) == 1
        tripped.refresh_from_db()
        assert (tripped.enabled, tripped.state) == (True, Destination.State.ACTIVE)
        entry = AuditEntry.objects.get(object_type="flags.Destination", object_id=str(tripped.pk))
        assert entry.changes == {"state": {"before": "disabled", "after": "active"}}
        released_off = DestinationFactory(
            environment=env, enabled=False, state=Destination.State.DISABLED
        )
        DestinationBatchFactory(environment=env, destination=released_off, status="dead")
        with pytest.raises(ValidationError, match="by release"):
            dest.destination_reenable(environment=env, destination=released_off, actor=None)
        released_off.refresh_from_db()
        assert (released_off.enabled, released_off.state) == (False, "disabled")
        assert DestinationBatch.objects.get(destination=released_off).status == "dead"


@pytest.mark.django_db
def test_warehouse_and_analytics__daily_partition_and_summary__exclude_test_members(
    tenant, settings, tmp_path
):
    settings.FLAGS_WAREHOUSE_DIR = str(tmp_path)
    env = tenant.production
    real, tester = MemberFactory(environment=env), MemberFactory(environment=env, is_test=True)
    for member in (real, real, tester):
        events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    events.emit(
        environment=env,
        name="channel_preference_set",
        member=real,
        properties={"channel": "email", "category": "monthly"},
    )
    day = timezone.now().date()
    with environment_scope(env):
        warehouse = DestinationFactory(environment=env, kind="warehouse", name="lake")
        analytics = DestinationFactory(environment=env, kind="analytics", name="bi")
        rows = warehouse_export_day(environment=env, destination=warehouse, day=day)
        analytics_summarize_day(environment=env, destination=analytics, day=day)
        summary = {
            (s.event_name, s.dimension): (s.events, s.members)
            for s in AnalyticsSummary.objects.filter(destination=analytics)
        }
    folder = tmp_path / env.institution.slug / "production" / "lake" / f"date={day.isoformat()}"
    lines = (folder / "events.jsonl").read_text().splitlines()
    assert rows == len(lines) == 3
    assert {json.loads(line)["member_id"] for line in lines} == {real.pk}
    with (folder / "events.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3
    assert summary == {("offer_viewed", "7"): (2, 1), ("channel_preference_set", "email"): (1, 1)}


@pytest.mark.django_db
def test_exports_hourly__event_arriving_late__its_own_day_rewritten_once(
    tenant, settings, tmp_path
):
    settings.FLAGS_WAREHOUSE_DIR = str(tmp_path)
    env = tenant.production
    member = MemberFactory(environment=env)
    now = timezone.now()
    three_days_ago = (now - timedelta(days=3)).astimezone(UTC)
    with environment_scope(env):
        lake = DestinationFactory(environment=env, kind="warehouse", name="lake", enabled=True)
        result = events_ingest(
            environment=env,
            events=[
                {
                    "name": "offer_viewed",
                    "member_id": member.pk,
                    "occurred_at": three_days_ago.isoformat(),
                    "properties": OFFER,
                }
            ],
        )
        assert result.accepted == 1
        (event,) = Event.objects.all()
        # Within the safety lag: its day is written, and it is seen again next time.
        first = exports_run(environment=env, now=now)
        lake.refresh_from_db()
        assert f"lake:{three_days_ago.date()}" in first
        assert lake.cursor == event.pk - 1
        second = exports_run(environment=env, now=now + timedelta(hours=1))
        lake.refresh_from_db()
        assert f"lake:{three_days_ago.date()}" in second
        assert lake.cursor == event.pk
        # Seen: the next hours rewrite yesterday and today only.
        third = exports_run(environment=env, now=now + timedelta(hours=2))
    assert sorted(third) == sorted(
        f"lake:{(now + timedelta(hours=2)).astimezone(UTC).date() - timedelta(days=d)}"
        for d in (0, 1)
    )
    folder = partition_dir(lake, three_days_ago.date())
    (line,) = (folder / "events.jsonl").read_text().splitlines()
    assert json.loads(line)["id"] == event.pk


@pytest.mark.django_db
def test_exports_hourly__a_late_day_fails_and_later_days_succeed__failing_until_it_is_written(
    tenant, settings, tmp_path
):
    """An hourly export run whose older (late-event) day cannot be written, while yesterday
    and today write fine, ends with the destination "active" and no error: the success of
    the later days wipes the failure, so staff never see that a partition keeps failing
    (it is retried every hour, invisibly). The failure must stay shown until that day is
    written."""
    settings.FLAGS_WAREHOUSE_DIR = str(tmp_path)
    env = tenant.production
    member = MemberFactory(environment=env)
    now = timezone.now()
    late_day = (now - timedelta(days=3)).astimezone(UTC).date()
    with environment_scope(env):
        lake = DestinationFactory(environment=env, kind="warehouse", name="lake", enabled=True)
        events_ingest(
            environment=env,
            events=[
                {
                    "name": "offer_viewed",
                    "member_id": member.pk,
                    "occurred_at": (now - timedelta(days=3)).isoformat(),
                    "properties": OFFER,
                }
            ],
        )
        # That day's partition cannot be written (a file where its folder should be).
        blocked = partition_dir(lake, late_day)
        blocked.parent.mkdir(parents=True, exist_ok=True)
        blocked.write_text("not a folder")
        done = exports_run(environment=env, now=now + timedelta(minutes=5))
        lake.refresh_from_db()
        assert f"lake:{late_day}" not in done  # the late day really failed
        assert len(done) == 2  # yesterday and today were written
        assert lake.state == Destination.State.FAILING
        assert lake.last_error.startswith(f"{late_day}: ")
        # The next hour it is tried again, and written: the destination is active again.
        blocked.unlink()
        again = exports_run(environment=env, now=now + timedelta(hours=1))
        lake.refresh_from_db()
    assert f"lake:{late_day}" in again
    assert (lake.state, lake.last_error) == (Destination.State.ACTIVE, "")


@pytest.mark.django_db
def test_webhook__endpoint_on_an_inside_address__refused_and_named_at_save(tenant, settings):
    """The endpoint is typed by the institution's staff: the platform posts to public
    addresses only (development and the tests allow this machine's)."""
    env = tenant.production
    events.emit(environment=env, name="offer_viewed", member=MemberFactory(environment=env))
    settings.OUTBOUND_PRIVATE_ALLOWED = False
    with Receiver() as receiver, environment_scope(env):
        destination = DestinationFactory(
            environment=env, url=receiver.url, secret="k3y", enabled=True
        )
        assert dest.destinations_forward(environment=env, now=later()) == {"sent": 0, "failed": 1}
        batch = DestinationBatch.objects.get(destination=destination)
        assert "127.0.0.1 is not a public internet address" in batch.last_error
        with pytest.raises(ValidationError) as invalid:
            destination.full_clean()
    assert receiver.requests == []
    assert "not a public internet address" in str(invalid.value.message_dict["url"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allow_events", 5),
        ("allow_events", ["offer_viewed", 7]),
        ("deny_events", True),
        ("rules", {"property": "offer_kind"}),
        ("rules", [{"property": "offer_kind", "op": "in", "value": 5}]),
        ("rules", [{"property": "offer_kind", "op": "not_in", "value": None}]),
        ("rules", [{"property": "offer_kind", "op": "like", "value": "h%"}]),
    ],
)
def test_destination__filter_the_forwarder_cannot_apply__refused_naming_the_field(
    tenant, field, value
):
    env = tenant.staging
    with environment_scope(env):
        destination = DestinationFactory.build(environment=env, **{field: value})
        with pytest.raises(ValidationError) as invalid:
            destination.full_clean()
    assert list(invalid.value.message_dict) == [field]


@pytest.mark.django_db
def test_webhook__filter_saved_unchecked__error_shown_on_it_others_served_then_raised(tenant):
    """A filter written before it was checked (or straight to the database) fails every
    run: the destination says so in the admin instead of staying "Active" while nothing
    goes, the other webhooks are still served, and the error is not swallowed."""
    env = tenant.production
    member = MemberFactory(environment=env)
    events.emit(environment=env, name="offer_viewed", member=member, properties=OFFER)
    with Receiver() as healthy, environment_scope(env):
        broken = DestinationFactory(
            environment=env,
            name="a-broken",
            enabled=True,
            rules=[{"property": "offer_kind", "op": "in", "value": 5}],
        )
        DestinationFactory(environment=env, name="b-healthy", url=healthy.url, enabled=True)
        with pytest.raises(TypeError):
            dest.destinations_forward(environment=env, now=later())
        broken.refresh_from_db()
    assert broken.state == Destination.State.FAILING
    assert broken.consecutive_failures == 1
    assert "TypeError" in broken.last_error
    assert [e["member_id"] for e in healthy.events()] == [member.pk]


@pytest.mark.django_db
def test_webhook__unexpected_error_while_sending__batch_retried_then_dead_lettered(
    tenant, monkeypatch
):
    env = tenant.production
    events.emit(environment=env, name="offer_viewed", member=MemberFactory(environment=env))

    def post(destination, batch):
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(dest, "_post", post)
    with environment_scope(env):
        destination = DestinationFactory(environment=env, enabled=True)
        now = later()
        with pytest.raises(RuntimeError):
            dest.destinations_forward(environment=env, now=now)
        batch = DestinationBatch.objects.get()
        destination.refresh_from_db()
        assert (batch.status, batch.attempts) == ("pending", 1)
        assert batch.next_attempt_at == now + timedelta(seconds=30)
        assert "RuntimeError: something unforeseen" in batch.last_error
        assert destination.state == Destination.State.FAILING
        assert "RuntimeError" in destination.last_error
        for attempt in range(2, 6):
            now = now + dest.backoff(attempt - 1) + timedelta(seconds=1)
            with pytest.raises(RuntimeError):
                dest.destinations_forward(environment=env, now=now)
        batch.refresh_from_db()
    assert (batch.status, batch.attempts) == ("dead", 5)
