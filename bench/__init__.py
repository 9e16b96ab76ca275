"""Benchmarks: each figure is printed beside a baseline measured in the same run.

Absolute times on shared machines are noisy; ratios to a baseline taken seconds apart on
the same machine are not. A benchmark module defines `run(ctx) -> list[Figure]`.
"""

from bench.harness import Context, Figure

__all__ = ["Context", "Figure"]
