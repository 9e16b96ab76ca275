"""The developer commands and the benchmark harness: what they promise in the README."""

from __future__ import annotations

import importlib.util
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
