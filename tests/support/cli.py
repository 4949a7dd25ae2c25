"""Running the CLI as a user would: in-process (fast, the default) or as a real process.

In-process runs go through the same entry point as the console script, with click's stream
isolation, so exit codes, stdout, stderr and error handling are the real ones; only the
interpreter start-up is skipped. ``invoke`` adds a time limit (for hostile input that could
hang). A few tests keep a real process to prove the installed entry point and import-time
behaviour.
"""

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

from engram_audit.cli import run as cli_run
from engram_audit.redaction import SECRETS

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
    def returncode(self) -> int:
        return self.code

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def located(self) -> list[tuple[str, int, int]]:
        """Every ``file:line:column`` the error lines name."""
        return [
            (match["path"], int(match["line"]), int(match["column"]))
            for match in LOCATED.finditer(self.stderr)
        ]


Result = CliResult


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


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _in_process(
    args: tuple[str, ...],
    *,
    cwd: Path,
    env: Mapping[str, str | None] | None,
    stdin: str | None,
    timeout: float,
) -> CliResult:
    runner = CliRunner()
    handlers = logging.getLogger().handlers[:]
    levels = {name: logging.getLogger(name).level for name in ("", "engram_audit", "azure")}
    SECRETS.clear()  # each run registers its own secrets, as a fresh process would
    try:
        with (
            _working_directory(cwd),
            runner.isolation(input=stdin, env=env) as streams,
            time_limit(timeout),
        ):
            code = cli_run(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    finally:
        logging.getLogger().handlers[:] = handlers  # the CLI pointed logging at captured stderr
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        SECRETS.clear()
    return CliResult(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))


def run_in_process(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str | None] | None = None,
    stdin: str | None = None,
    timeout: float = 120.0,
) -> CliResult:
    result = _in_process(args, cwd=cwd, env=env, stdin=stdin, timeout=timeout)
    assert "Traceback" not in result.output
    return result


def invoke(
    *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 20.0
) -> CliResult:
    """``engram-audit ARGS`` in this process, with a time limit; no assertion on the output."""
    return _in_process(args, cwd=Path.cwd(), env=env, stdin=None, timeout=timeout)


def run_process(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
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
    assert "Traceback" not in result.stderr + result.stdout
    return CliResult(result.returncode, result.stdout, result.stderr)
