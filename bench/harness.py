"""The benchmark context: a migrated PostgreSQL database, Redis, gunicorn, workers, baselines."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("CHIMNEY_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
BENCH_DB = os.environ.get("CHIMNEY_BENCH_DB", "chimney_bench")
REDIS_URL = os.environ.get("CHIMNEY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    target_ratio: float | None = None  # value / baseline must reach this (None: informative)
    higher_is_better: bool = True
    target_value: float | None = None  # or the value itself must reach this (an absolute rate)

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")

    @property
    def meets_target(self) -> bool | None:
        if self.target_value is not None:
            if self.higher_is_better:
                return self.value >= self.target_value
            return self.value <= self.target_value
        if self.target_ratio is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target_ratio
        return self.ratio <= self.target_ratio

    def line(self) -> str:
        verdict = {None: "", True: "meets target", False: "BELOW TARGET"}[self.meets_target]
        target = ""
        if self.target_value is not None:
            sign = "≥" if self.higher_is_better else "≤"
            target = f"target {sign} {self.target_value:,.0f} {self.unit}"
        elif self.target_ratio is not None:
            target = f"target {'≥' if self.higher_is_better else '≤'} {self.target_ratio:.2f}x"
        return (
            f"{self.name:<46} {self.value:>12,.1f} {self.unit:<14} | {self.baseline:<34} "
            f"{self.baseline_value:>12,.1f} | ratio {self.ratio:6.2f}x {target} {verdict}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Context:
    """What every benchmark gets: services, environment variables, and the shared baselines."""

    def __init__(self) -> None:
        self.database_url = f"{PG_ADMIN_URL}/{BENCH_DB}"
        self.redis_url = REDIS_URL
        self._baselines: dict[str, float] = {}
        self.var = ROOT / "var" / "bench"
        self.var.mkdir(parents=True, exist_ok=True)

    # -- environment ----------------------------------------------------------------------
    def env(self, **extra) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "chimney.settings",
                "DEBUG": "0",
                "CHIMNEY_TESTING": "1",  # development keys and a fast password hasher
                "SECURE_SSL_REDIRECT": "0",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "BASE_DOMAIN": "bench.test",
                "EMAIL_URL": "consolemail://",
                "CONN_MAX_AGE": "60",
                "LOG_LEVEL": "WARNING",
                "CHIMNEY_VAR_DIR": str(self.var),
            }
        )
        env.update(extra)
        return env

    def prepare_database(self) -> None:
        """A fresh, migrated database for this run."""
        import psycopg

        with psycopg.connect(f"{PG_ADMIN_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
        )

    def setup_django(self) -> None:
        """Configure Django in this process against the benchmark database."""
        os.environ.update(self.env())
        import django

        django.setup()

    # -- servers ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def gunicorn(self, *, workers: int = 2, env: dict | None = None):
        """Serve the project with gunicorn on a free port; yields the port."""
        port = free_port()
        log = (self.var / "gunicorn.log").open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "chimney.wsgi",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env(**(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                time.sleep(0.1)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()

    @contextlib.contextmanager
    def celery_workers(
        self, *, processes: int = 2, env: dict | None = None, queues: str = "celery"
    ):
        """`processes` prefork worker processes on Redis, sharing the benchmark database."""
        log = (self.var / "worker.log").open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "chimney",
                "worker",
                "-l",
                "WARNING",
                "-c",
                str(processes),
                "-Q",
                queues,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--prefetch-multiplier",
                "4",
            ],
            cwd=ROOT,
            env=self.env(CELERY_TASK_ALWAYS_EAGER="0", **(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            from celery import Celery

            probe = Celery("bench-probe", broker=self.redis_url, backend=self.redis_url)
            probe.send_task("chimney.ping", args=["ready"]).get(timeout=60)
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()

    # -- load ---------------------------------------------------------------------------------
    def http_rate(
        self,
        port: int,
        path: str,
        *,
        host: str,
        headers: dict | None = None,
        seconds: float = 5.0,
        concurrency: int = 4,
    ) -> float:
        """Requests per second over keep-alive connections; every answer must be a 200."""
        counts = [0] * concurrency
        errors: list[str] = []

        def client(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            hdrs = {"Host": host, **(headers or {})}
            while time.monotonic() < stop:
                conn.request("GET", path, headers=hdrs)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"{path}: HTTP {response.status}")
                    return
                counts[i] += 1
            conn.close()

        # Warm up (imports, connections, caches) before measuring.
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(20):
            warm.request("GET", path, headers={"Host": host, **(headers or {})})
            warm.getresponse().read()
        warm.close()
        started = time.monotonic()
        stop = started + seconds  # after the warm-up, however long it took
        threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(errors[0])
        return sum(counts) / (time.monotonic() - started)

    def drain_rate(self, task_name: str, count: int, *, args_for=lambda i: []) -> float:
        """Publish `count` tasks and time until workers have consumed and acknowledged all."""
        import redis
        from celery import Celery

        app = Celery("bench-producer", broker=self.redis_url)
        client = redis.Redis.from_url(self.redis_url)
        started = time.monotonic()
        with app.producer_or_acquire() as producer:
            for i in range(count):
                app.send_task(task_name, args=args_for(i), producer=producer, ignore_result=True)
        while client.llen("celery") or client.hlen("unacked"):
            time.sleep(0.005)
        return count / (time.monotonic() - started)

    # -- baselines ------------------------------------------------------------------------------
    def baseline(self, name: str) -> float:
        """Per-second rate of a shared baseline, measured once in this run."""
        if name not in self._baselines:
            self._baselines[name] = getattr(self, f"_baseline_{name}")()
        return self._baselines[name]

    def _baseline_bare_view(self) -> float:
        with self.gunicorn() as port:
            return self.http_rate(port, "/healthz", host="bench.test")

    def _baseline_noop_task(self) -> float:
        with self.celery_workers(processes=2):
            return self.drain_rate("chimney.noop", 5000)

    def _baseline_bulk_insert(self) -> float:
        from django.db import connection

        rows = 50_000
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE bench_rows (id bigserial, a bigint, b text, c numeric(12,2))"
            )
            started = time.monotonic()
            for start in range(0, rows, 1000):
                values = [(i, f"row {i}", i * 1.5) for i in range(start, start + 1000)]
                cursor.executemany("INSERT INTO bench_rows (a, b, c) VALUES (%s, %s, %s)", values)
            elapsed = time.monotonic() - started
            cursor.execute("DROP TABLE bench_rows")
        return rows / elapsed
