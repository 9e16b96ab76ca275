"""Run the benchmarks: `python -m bench [name ...]` (what `make bench` calls).

Each figure is printed beside its baseline measured in the same run on the same machine,
as a ratio. Needs PostgreSQL and Redis (127.0.0.1); writes nothing outside var/bench.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.harness import Context, Figure

SKIP = {"harness", "__main__", "estimator_accuracy"}


def modules(names: list[str]) -> list[str]:
    """The benchmarks to run: all, or those named; a name that is none of them is an error."""
    found = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name not in SKIP and not info.name.startswith("_")  # _x: helpers
    )
    unknown = [n for n in names if n not in found]
    if unknown:
        hint = (
            " (the estimator's accuracy needs no services: python bench/estimator_accuracy.py)"
            if "estimator_accuracy" in unknown
            else ""
        )
        sys.exit(f"no benchmark named {', '.join(unknown)}; there are: {', '.join(found)}{hint}")
    return [n for n in found if not names or n in names]


def main(argv: list[str]) -> int:
    names = modules(argv)
    ctx = Context()
    print("preparing a fresh benchmark database …", flush=True)
    ctx.prepare_database()
    ctx.setup_django()
    figures: list[Figure] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        print(f"running {name} …", flush=True)
        figures.extend(module.run(ctx))
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    print()
    print("baselines measured in this run:")
    for key, value in ctx._baselines.items():
        print(f"  {key:<20} {value:>12,.1f} /s")
    print()
    for figure in figures:
        print(figure.line())
    if not figures:
        print("no figure was measured: that is a failure, not a pass")
        return 1
    return 1 if any(f.meets_target is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
