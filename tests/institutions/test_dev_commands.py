"""The developer commands and the benchmark harness: what they promise in the README."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import api_members_upsert, flags_ingest
from bench.harness import Context
from homes.valuation.estimator import KING_COUNTY_SALES_CSV
from tests import services

ROOT = Path(__file__).resolve().parents[2]


def _dev():
    spec = importlib.util.spec_from_file_location("chimney_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_flags_ingest__below_its_target__is_not_a_pass():
    (figure,) = flags_ingest.figures({"validated": 4_999.0, "plain": 50_000.0, "database": "pg"})
    assert figure.meets_target is False
    assert "BELOW TARGET" in figure.line()
    (figure,) = flags_ingest.figures({"validated": 5_000.0, "plain": 50_000.0, "database": "pg"})
    assert figure.meets_target is True


def test_bench_api_members_upsert__below_its_target__is_not_a_pass():
    result = {
        "created": 1_999.0,
        "updated": 3_000.0,
        "plain": 30_000.0,
        "refresh": 500.0,
        "database": "postgresql",
    }
    figure = api_members_upsert.figures(result)[0]
    assert figure.meets_target is False
    assert "BELOW TARGET" in figure.line()
    assert api_members_upsert.figures({**result, "created": 2_000.0})[0].meets_target is True


@pytest.mark.parametrize("name", ["homes_dashbord", "estimator_accuracy"])
def test_bench__unknown_benchmark_name__exits_with_the_names_it_knows(monkeypatch, name):
    prepared = []
    monkeypatch.setattr(Context, "prepare_database", lambda self: prepared.append(1))
    with pytest.raises(SystemExit) as exit_:
        bench_main.main([name])
    assert f"no benchmark named {name}" in str(exit_.value.code)
    assert "homes_dashboard" in str(exit_.value.code)
    assert prepared == []  # refused before any database is made


@pytest.mark.parametrize(
    ("args", "codes", "fails"),
    [
        ([], [0, 5], True),  # the whole suite: an empty Redis half means tests did not run
        ([], [5, 0], True),
        ([], [0, 0], False),
        (["tests/homes/test_equity.py"], [0, 5], False),  # a subset may lie on one side
        (["tests/homes/test_equity.py"], [5, 5], True),
        ([], [0, 1], True),
    ],
)
def test_dev_pytest_pass__empty_half__fails_for_the_whole_suite(monkeypatch, args, codes, fails):
    dev = _dev()
    answers = iter(codes)
    monkeypatch.setattr(dev, "_pytest", lambda env, argv: next(answers))
    monkeypatch.setenv("CHIMNEY_TEST_WORKERS", "2")
    if fails:
        with pytest.raises(SystemExit) as exit_:
            dev.pytest_pass("SQLite", {}, args)
        assert exit_.value.code not in (0, None)
    else:
        dev.pytest_pass("SQLite", {}, args)


@pytest.mark.parametrize("required", [False, True])
def test_require_chromium__none_installed__skips_on_a_laptop_fails_in_ci(
    monkeypatch, tmp_path, required
):
    monkeypatch.setattr(services, "DEBIAN_CHROMIUM", str(tmp_path / "chromium"))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "none"))  # none fetched
    monkeypatch.setattr(services, "REQUIRE_SERVICES", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="no Chromium"):
        services.require_chromium()
    (tmp_path / "chromium").touch()
    assert services.require_chromium() == str(tmp_path / "chromium")


def test_sales_data__shipped_inside_the_repository():
    # The demo values its production homes from these sales on a fresh clone.
    assert KING_COUNTY_SALES_CSV.is_relative_to(ROOT)
    assert KING_COUNTY_SALES_CSV.stat().st_size > 1_000_000


_SUPERVISED = """
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("chimney_dev", sys.argv[1])
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)
child = "import os, sys, time; print(os.getpid(), flush=True); time.sleep(120)"
procs = [dev.spawn([sys.executable, "-c", child], stdout=subprocess.DEVNULL) for _ in "ab"]
print(" ".join(str(p.pid) for p in procs), flush=True)
dev.supervise(procs, "running: two sleepers", grace=10)
print("stopped", *(p.returncode for p in procs), flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_supervise__sigterm__stops_every_child_and_returns(tmp_path):
    """`dev.py run` stopped by SIGTERM (a service manager, `kill`) stops the web server,
    worker and beat it started, as Ctrl-C does, instead of leaving them running."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISED, str(ROOT / "dev.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(pid) for pid in supervisor.stdout.readline().split()]
        assert "running: two sleepers" in supervisor.stdout.readline()  # handlers installed
        assert all(_alive(pid) for pid in pids)
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert supervisor.returncode == 0
    codes = out.split("stopped", 1)[1].split()
    assert len(codes) == 2
    assert all(code.lstrip("-").isdigit() for code in codes)  # both exited (None if not)
    assert not any(_alive(pid) for pid in pids)


# A non-interactive shell starts `cmd &` with SIGINT ignored; dev.py's children inherit it.
# The child stands in for `manage.py runserver`, whose autoreloader runs the server in a
# grandchild with subprocess.run and stops it when it is itself interrupted or terminated.
_SUPERVISED_FROM_A_SCRIPT = """
import importlib.util, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
spec = importlib.util.spec_from_file_location("chimney_dev", sys.argv[1])
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)
server = (
    "import os, pathlib, sys, time; "
    "pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(60)"
)
reloader = (  # django.utils.autoreload.run_with_reloader, in short
    "import signal, subprocess, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
    "subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]])"
)
args = [sys.executable, "-c", reloader, server, sys.argv[2]]
procs = [dev.spawn(args, stdout=subprocess.DEVNULL)]
dev.supervise(procs, "running: a web server", grace=2)
print("stopped", flush=True)
"""


def test_dev_run__started_from_a_script_then_sigterm__leaves_no_web_server_running(tmp_path):
    """Started as `python3 dev.py run &` from a script (SIGINT ignored) and stopped with
    `kill`, dev.py stops runserver's server process too, not only its reloader: a server
    left behind holds the port, and the next `dev.py run` dies with "That port is already
    in use"."""
    pid_file = tmp_path / "server.pid"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISED_FROM_A_SCRIPT, str(ROOT / "dev.py"), str(pid_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        assert "running: a web server" in supervisor.stdout.readline()
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        server = int(pid_file.read_text())
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=20)
        assert "stopped" in out
        for _ in range(20):  # the server may take a moment to go once told to
            if not _alive(server):
                break
            time.sleep(0.1)
        assert not _alive(server), "the web server outlived `dev.py run`"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
