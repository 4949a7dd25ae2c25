"""Running the CLI as a user does: in-process (fast, through ``main`` with its error handling)
or as a real ``python -m engram_audit`` process, with a time limit either way."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from engram_audit.cli import main

ROOT = Path(__file__).parents[2]
# file:line:column: as Problem.__str__ writes it.
LOCATED = re.compile(r"(?m)^engram-audit: (?P<path>[^\n]+?):(?P<line>\d+):(?P<column>\d+):")


class CaseTimeout(BaseException):
    """Raised in the CLI when a case runs too long; a BaseException so no handler eats it."""


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def located(self) -> list[tuple[str, int, int]]:
        """Every ``file:line:column`` the error lines name."""
        return [
            (match["path"], int(match["line"]), int(match["column"]))
            for match in LOCATED.finditer(self.stderr)
        ]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM: main thread, Unix)."""

    def expire(_signal: int, _frame: object) -> None:
        raise CaseTimeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(
    *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 20.0
) -> CliResult:
    """``engram-audit ARGS`` in this process, through ``main`` (exit codes, error messages)."""
    runner = CliRunner()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    code: int = 0
    try:
        with runner.isolation(env=env) as (stdout, stderr, _), time_limit(timeout):
            try:
                main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            out, err = stdout.getvalue(), stderr.getvalue()
    finally:
        root.handlers[:] = handlers  # main() pointed logging at the captured stderr
        root.setLevel(level)
    return CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def run_process(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0, cwd: Path = ROOT
) -> CliResult:
    """``python -m engram_audit ARGS`` as a separate process."""
    result = subprocess.run(
        [sys.executable, "-m", "engram_audit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return CliResult(result.returncode, result.stdout, result.stderr)
