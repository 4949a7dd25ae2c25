"""One status line on stderr for long collections, redrawn in place; only when stderr is a
terminal, so CI logs and pipes stay quiet. Any character that is not printable (controls,
bidi overrides) is shown as ``?``: a host or table name must not steer the terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_INTERVAL = 0.2
"""Seconds between redraws: often enough to look alive, rarely enough to cost nothing."""


def seconds_left(done: int, total: int, elapsed: float) -> float | None:
    """Time left if the remaining steps take as long as the finished ones did on average; None
    before the first step has finished."""
    if done <= 0 or total <= done:
        return None
    return elapsed / done * (total - done)


class StatusLine:
    def __init__(self, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0
        self._width = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < REDRAW_INTERVAL:
            return
        self._last = now
        line = "".join(c if c.isprintable() else "?" for c in text)
        padding = " " * max(0, self._width - len(line))  # wipe what a longer line left behind
        self._width = len(line)
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
