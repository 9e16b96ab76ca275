"""Drill: a worker killed mid fan-out and Redis restarted; every delivery is sent, none twice
but for a message the kill caught between its final "." and the commit that records it.

Real services: a Celery worker process on Redis, the test database (SQLite or PostgreSQL),
a local SMTP sink that counts every message it receives.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from notifications.models import Delivery
from tests.celery_worker import Worker, producer, wait_until
from tests.notifications.conftest import SinkHandler, SMTPSink
from tests.notifications.helpers import deliveries, members
from tests.services import PrivateRedis, require_redis

MEMBERS = 400


class SlowCountingHandler(SinkHandler):
    """Takes a little time per message, so that the kill lands in the middle of the fan-out.

    The delay is before the data: like a real MTA, the sink keeps a message once it has
    received its final "." (aiosmtpd would drop it if the client vanished while the
    handler is still running, which no queueing mail server does).
    """

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(0.01)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.mark.redis
@pytest.mark.slow
def test_drill__worker_sigkill_and_redis_restart__none_lost_none_twice_but_the_one_in_flight(
    transactional_db, tenant
):
    require_redis()  # the suite's Redis must be there; the drill restarts one of its own
    server = PrivateRedis().start()
    url = server.url
    env = tenant.production
    people = members(env, MEMBERS)
    sink = SMTPSink()
    sink.handler = SlowCountingHandler()
    sink.controller.handler = sink.handler
    sink.controller.start()
    worker_env = {
        "EMAIL_URL": sink.url,
        "NOTIFICATIONS_HOME_SUMMARIES": "tests.notifications.fake_homes.home_summaries",
        "NOTIFICATIONS_SEND_BATCH": "10",
        "NOTIFICATIONS_FANOUT_CHUNK": "50",
        "NOTIFICATIONS_SENDING_LEASE_SECONDS": "5",
        "NOTIFICATIONS_REDISPATCH_SECONDS": "5",
        "CELERY_VISIBILITY_TIMEOUT": "10",
    }
    client = producer(url)
    worker = Worker(url, concurrency=2, extra_env=worker_env).start()
    try:
        client.send_task("notifications.campaign_run", args=[env.pk, "home_value", "2026-05"])
        sent = lambda: len(sink.messages)  # noqa: E731
        wait_until(lambda: sent() >= MEMBERS // 5, timeout=90, progress=sent)
        worker.kill()  # SIGKILL in the middle of the fan-out
        killed_at = len(sink.messages)
        assert killed_at < MEMBERS, "the fan-out finished before the kill: make it slower"
        worker = Worker(url, concurrency=2, extra_env=worker_env).start()
        wait_until(lambda: sent() >= killed_at + MEMBERS // 5, timeout=90, progress=sent)
        server.restart()  # every queued and unacknowledged task is gone
        client = producer(url)

        def finished():
            # What beat does: sweep the outbox, and resume the month's campaign.
            client.send_task("notifications.sweep")
            client.send_task("notifications.campaign_run", args=[env.pk, "home_value", "2026-05"])
            rows = deliveries(env)
            return len(rows) == MEMBERS and all(r.state == Delivery.State.SENT for r in rows)

        # Timed from the last message the sink received: slow under load is not a failure.
        wait_until(finished, timeout=120, interval=2, progress=sent)
        time.sleep(3)  # a late duplicate would show up here
    finally:
        worker.stop()
        sink.controller.stop()
        server.stop()
    counts = Counter(m["X-Chimney-Delivery"] for _, m in sink.messages)
    ids = {str(d.pk) for d in deliveries(env)}
    assert set(counts) == ids, "a delivery was lost"
    # The one window exactly-once cannot close (README, sending.py): a kill landing between
    # the final "." of a message and the commit that records it. Each of the killed
    # worker's two processes can be in that window for its one message in flight; on a
    # loaded machine, with SQLite's slower commit, the kill now and then lands there.
    twice = sorted(k for k, v in counts.items() if v > 1)
    assert max(counts.values()) <= 2, f"sent three times or more: {counts.most_common(3)}"
    assert len(twice) <= 2, f"sent twice, more than the killed worker had in flight: {twice}"
    assert {tuple(rcpt) for rcpt, _ in sink.messages} == {(m.email,) for m in people}
