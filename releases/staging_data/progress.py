"""A text progress bar for management commands: one line per step, redrawn in place."""

from __future__ import annotations


class ProgressBar:
    """Called as progress(step, done, total); draws `step [#####.....]  50% 500/1000`."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width = stream, width
        self._step: str | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self._step and self._step is not None:
            self.stream.write("")  # the previous step's line stays as it ended
        self._step = step
        filled = self.width * done // max(total, 1)
        percent = 100 * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{step:<20} [{bar}] {percent:3d}% {done:,}/{total:,}", ending="")
        self.stream.flush()

    def close(self) -> None:
        if self._step is not None:
            self.stream.write("")
            self._step = None
