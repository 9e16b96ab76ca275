#!/usr/bin/env python3
"""Chimney's developer commands; needs nothing but Python 3.11.

python3 dev.py run      set up, migrate, load demo data, run web + worker + beat
python3 dev.py test     set up and run the whole test suite (SQLite; PostgreSQL too when up)
python3 dev.py ci       what CI runs: the suite with PostgreSQL and Redis required, plus lint
python3 dev.py bench    the benchmarks, each beside its baseline measured in the same run
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".chimney-deps"
PG_URL = os.environ.get("CHIMNEY_PG_URL", "postgres://postgres@127.0.0.1:5432/chimney")
REDIS_TEST_URL = os.environ.get("CHIMNEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def sh(*args, env=None, check=True) -> int:
    code = subprocess.call([str(a) for a in args], cwd=ROOT, env=env)
    if check and code != 0:
        sys.exit(code)
    return code


def setup() -> None:
    """Create .venv and install the pinned dependencies (again only when they change)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Chimney needs Python 3.11 (this is {sys.version.split()[0]}).")
    if not PY.exists():
        say("creating .venv")
        sh(sys.executable, "-m", "venv", VENV)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    digest = hashlib.sha256("\n".join(deps).encode()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        say("installing pinned dependencies")
        sh(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *deps)
        STAMP.write_text(digest)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def base_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(extra)
    return env


def run() -> None:
    setup()
    port = os.environ.get("PORT", "8000")
    env = base_env(DEBUG=env_default("DEBUG", "1"), PUBLIC_PORT=port)
    env.setdefault("EMAIL_URL", "consolemail://")
    say("migrating the database")
    sh(PY, "manage.py", "migrate", "--no-input", env=env)
    sh(PY, "manage.py", "demo_load", env=env)
    procs = [
        spawn([PY, "manage.py", "runserver", f"0.0.0.0:{port}"], env=env),
        spawn([PY, "-m", "celery", "-A", "chimney", "worker", "-l", "INFO", "-c", "2"], env=env),
        spawn([PY, "-m", "celery", "-A", "chimney", "beat", "-l", "INFO"], env=env),
    ]
    supervise(procs, f"running: web http://localhost:{port}/admin/ , worker and beat")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def spawn(args: list, **kwargs) -> subprocess.Popen:
    """Start a process in a process group of its own, so that what it leaves behind when
    stopped (runserver serves from a child of its autoreloader) can be stopped with it."""
    return subprocess.Popen([str(a) for a in args], cwd=ROOT, start_new_session=True, **kwargs)


def _kill_group(p: subprocess.Popen) -> None:
    """Kill what is left of the process group a spawn()ed process led."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(p.pid, signal.SIGKILL)


def supervise(procs: list[subprocess.Popen], running: str, grace: float = 15.0) -> None:
    """Wait until one process exits, Ctrl-C or SIGTERM; then stop all of them.

    SIGTERM (a service manager, `kill`, a container stopping) stops the children as Ctrl-C
    does, so no worker or web server is left running without its supervisor. Each gets
    SIGTERM, not SIGINT: a script's `dev.py run &` starts with SIGINT ignored, and its
    children inherit that. Once it has exited (or after ``grace`` seconds), the rest of its
    process group is killed. ``running`` is announced once both signals are handled.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        say(f"{running} (Ctrl-C or SIGTERM stops all)")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut this short
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            _kill_group(p)
        signal.signal(signal.SIGTERM, previous)


def env_default(name: str, value: str) -> str:
    return os.environ.get(name, value)


def _pytest(env: dict, args: list[str]) -> int:
    return sh(PY, "-m", "pytest", *args, env=env, check=False)


def pytest_pass(label: str, env: dict, args: list[str], marks: str = "") -> None:
    """The suite on one database: in parallel, then the Redis tests one after another.

    pytest's exit code 5 means no test ran: a failure for the pass as a whole, though one
    half of it may be empty when a subset of the suite is run.
    """
    workers = os.environ.get("CHIMNEY_TEST_WORKERS", str(min(os.cpu_count() or 1, 4)))
    base = f"({marks}) and " if marks else ""
    say(f"tests on {label}")
    if workers in ("0", "1"):
        codes = [_pytest(env, [*(["-m", marks] if marks else []), *args])]
    else:
        # Tests on the shared Redis start real workers and the drill restarts Redis: on
        # two busy cores they would starve, so they get a serial pass of their own.
        codes = [_pytest(env, ["-n", workers, "-m", f"{base}not uses_redis", *args])]
        say(f"tests on {label} that use Redis")
        codes.append(_pytest(env, ["-m", f"{base}uses_redis", *args]))
    if all(code == 5 for code in codes):
        sys.exit(f"pytest collected no tests on {label}: that is a failure, not a pass.")
    if not args and 5 in codes:
        # The whole suite has tests on both sides of the split: an empty half means the
        # marking went wrong and a part of the suite silently did not run.
        sys.exit(f"one half of the whole suite on {label} collected no tests: a failure.")
    failed = [code for code in codes if code not in (0, 5)]
    if failed:
        sys.exit(failed[0])


def run_tests(argv: list[str], *, require_services: bool = False) -> None:
    setup()
    ensure_chromium()
    env = base_env(CHIMNEY_TEST_REDIS_URL=REDIS_TEST_URL)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if require_services:
        env["CHIMNEY_REQUIRE_SERVICES"] = "1"
    pg_up = reachable("127.0.0.1", 5432) if "127.0.0.1:5432" in PG_URL else True
    # The SQLite pass leaves PostgreSQL-only tests to the PostgreSQL pass.
    sqlite_marks = "not postgres" if (pg_up or require_services) else ""
    pytest_pass("SQLite", env, argv, sqlite_marks)
    if pg_up or require_services:
        pytest_pass("PostgreSQL", {**env, "DATABASE_URL": PG_URL}, argv)
    else:
        say("PostgreSQL is not running on 127.0.0.1:5432: its pass was not run")


def ensure_chromium() -> None:
    """Browser tests drive Debian's Chromium: install it where we may (CI runs as root),
    else Playwright's own build (into the user's cache); without either they skip, or fail
    under `ci`."""
    if Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing chromium for the browser tests")
        sh("apt-get", "update", "-qq", check=False)
        sh("apt-get", "install", "-y", "-qq", "chromium", check=False)
    if not Path("/usr/bin/chromium").exists():
        say("fetching Playwright's Chromium for the browser tests")
        sh(PY, "-m", "playwright", "install", "chromium", check=False)


def ci(argv: list[str]) -> None:
    setup()
    say("ruff check")
    sh(PY, "-m", "ruff", "check", ".")
    say("ruff format --check")
    sh(PY, "-m", "ruff", "format", "--check", ".")
    say("makemigrations --check")
    sh(PY, "manage.py", "makemigrations", "--check", "--dry-run", env=base_env(DEBUG="1"))
    run_tests(argv, require_services=True)


def bench(argv: list[str]) -> None:
    setup()
    sh(PY, "-m", "bench", *argv, env=base_env(DEBUG="0", CHIMNEY_TESTING="1"))


def main() -> None:
    command, argv = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command == "run":
        run()
    elif command == "test":
        run_tests(argv)
    elif command == "ci":
        ci(argv)
    elif command == "bench":
        bench(argv)
    elif command == "setup":
        setup()
    else:
        print(__doc__)


if __name__ == "__main__":
    main()
