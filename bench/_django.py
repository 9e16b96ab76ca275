"""Set up Django for a standalone benchmark: a throwaway test database, torn down after."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LocalFigure:
    """Stand-in for bench.Figure when the benchmark runs on its own."""

    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    target_ratio: float | None = None


def figure_class():
    try:
        from bench import Figure  # the shared runner's type, once it exists

        return Figure
    except ImportError:
        return LocalFigure


def configure(suffix: str = "bench") -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings_test")
    os.environ.setdefault("CHIMNEY_TEST_DB_SUFFIX", suffix)
    import django

    django.setup()


@contextmanager
def test_database():
    """A fresh migrated database (the configured one's test twin), destroyed afterwards."""
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def show(figures) -> None:
    for f in figures:
        ratio = f.value / f.baseline_value if f.baseline_value else float("nan")
        print(
            f"{f.name}: {f.value:,.1f} {f.unit}  beside  {f.baseline}: {f.baseline_value:,.1f} "
            f"{f.unit}  (ratio {ratio:.3f}"
            + (f", target >= {f.target_ratio:.3f})" if f.target_ratio else ")")
        )
