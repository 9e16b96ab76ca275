"""A text progress bar for management commands."""

from __future__ import annotations


class ProgressBar:
    def __init__(self, stream, label: str, width: int = 30):
        self.stream, self.label, self.width = stream, label, width

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        percent = 100 * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done}/{total}", ending="")
        if done >= total:
            self.stream.write("")
        self.stream.flush()
