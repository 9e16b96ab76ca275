"""Fitted estimators kept on disk, so that each process need not fit its own.

Fitting the estimator over thousands of sales takes seconds (the learned value is two
boosted models of 1,000 rounds each), and every web and worker process did it on its first
valuation. Now the first process that needs the estimator for a set of sales fits it and
writes it here, while the others wait for it and read it, as do later restarts. A file's
name carries the sales' fingerprint and a digest of the estimator's code and of the
libraries it runs on, so a change in either makes a new file; the writer removes all but
the most recently used few.

The files are pickles, read only from the platform's own directory (the setting
HOMES_ESTIMATOR_DIR, by default var/estimators), which nothing but the platform writes.
A file that cannot be read is removed and the estimator fitted again; a directory that
cannot be written only costs each process its own fit, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import lightgbm
import numpy

from homes.valuation import estimator as _estimator
from homes.valuation import learned as _learned

logger = logging.getLogger(__name__)

#: Estimator files kept (the most recently used); each set of sales has one.
KEEP = 8
SUFFIX = ".estimator"


@functools.cache
def code_version() -> str:
    """A digest of what a fitted estimator depends on besides its sales."""
    digest = hashlib.blake2b(digest_size=8)
    for module in (_estimator, _learned):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(f"{lightgbm.__version__}|{numpy.__version__}|{sys.version_info[:2]}".encode())
    return digest.hexdigest()


def path_for(directory: Path, fingerprint: str) -> Path:
    return directory / f"{fingerprint}-{code_version()}{SUFFIX}"


def load_or_build(directory: Path, fingerprint: str, build: Callable[[], object]) -> object:
    """The estimator stored for this fingerprint, or build() written there for next time.

    One process builds while the others wait on a lock file and then read its result.
    """
    path = path_for(directory, fingerprint)
    found = _read(path)
    if found is not None:
        return found
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (held across the build)
    except OSError as exc:
        logger.warning(
            "estimator store %s not writable (%s): fitting in this process", directory, exc
        )
        return build()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        found = _read(path)
        if found is not None:
            return found
        built = build()
        _write(path, built)
    _prune(directory)
    return built


def _read(path: Path) -> object | None:
    try:
        with open(path, "rb") as f:
            found = pickle.load(f)  # noqa: S301 (the platform's own directory; see above)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: fitted again
        logger.warning("estimator file %s unreadable (%s): fitting again", path, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    if not isinstance(found, _estimator.ComparableSalesEstimator):
        logger.warning("estimator file %s holds a %s: fitting again", path, type(found).__name__)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept by _prune
    return found


def _write(path: Path, value: object) -> None:
    """Written whole or not at all (a temporary file renamed into place)."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".writing-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        logger.warning("estimator file %s not written (%s)", path, exc)


def _prune(directory: Path) -> None:
    files = sorted(directory.glob(f"*{SUFFIX}"), key=_mtime, reverse=True)
    for old in files[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
        with contextlib.suppress(OSError):
            old.with_suffix(".lock").unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
