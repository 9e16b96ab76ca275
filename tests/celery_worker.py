"""A real Celery worker process on Redis, sharing the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        host = s.get("HOST") or "127.0.0.1"
        port = s.get("PORT") or 5432
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{s.get('USER') or 'postgres'}{password}@{host}:{port}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


def process_env(**extra: str) -> dict:
    """The environment of a process that runs the project against the test database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chimney.settings_test",
        "CHIMNEY_TESTING": "1",
        "DATABASE_URL": database_url(),
        **extra,
    }


class Worker:
    """Start `celery worker` with the project's settings, pointed at the test database."""

    _started = 0  # several workers in one test each get their own log

    def __init__(
        self,
        redis_url: str,
        *,
        concurrency: int = 1,
        extra_env: dict | None = None,
        queue: str = "celery",
    ):
        self.redis_url = redis_url
        # A private queue keeps test runs that share one Redis server from taking each
        # other's messages; app code that publishes to the default queue needs "celery".
        self.queue = queue
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        Worker._started += 1
        self.log_path = ROOT / "var" / f"test-worker-{os.getpid()}-{Worker._started}.log"

    def env(self) -> dict:
        return process_env(CELERY_TASK_ALWAYS_EAGER="0", REDIS_URL=self.redis_url, **self.extra_env)

    def start(self) -> Worker:
        self.log_path.parent.mkdir(exist_ok=True)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "chimney",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                self.queue,
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def send_task(self, name: str, *, args=(), kwargs=None):
        """Send a task by name to this worker's queue; returns the AsyncResult."""
        return producer(self.redis_url).send_task(name, args=args, kwargs=kwargs, queue=self.queue)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker abruptly (its pool children die with it: Celery sets PDEATHSIG)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()


def producer(redis_url: str) -> Celery:
    """A client app that sends tasks by name over Redis and reads their results."""
    # Not the current app: shared tasks' .delay() elsewhere must keep the project's app.
    app = Celery("chimney-test-producer", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.task_serializer = "json"
    return app


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.1, progress=None):
    """Poll ``predicate`` until it is true; TimeoutError after ``timeout`` seconds.

    With ``progress`` (a callable returning something comparable, e.g. a count), the timeout
    counts from the last time its value changed: a slow but advancing system (a loaded CI
    machine) gets the time it needs, while a stalled one still fails after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last = progress() if progress else None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
        if progress:
            now = progress()
            if now != last:
                last, deadline = now, time.monotonic() + timeout
    detail = f" (progress stalled at {last!r})" if progress else ""
    raise TimeoutError(f"condition not met in time{detail}")
