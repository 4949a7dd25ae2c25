"""Running the CLI as a user would: in-process (fast, the default) or as a real process.

In-process runs go through ``engram_audit.cli.run``, the same entry point as the console
script, with click's stream isolation, so exit codes, stdout, stderr and error handling are
the real ones; only the interpreter start-up is skipped. A few tests keep a real process to
prove the installed entry point and the import-time behaviour.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from engram_audit.cli import run as cli_run
from engram_audit.redaction import SECRETS

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_in_process(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, stdin: str | None = None
) -> Result:
    runner = CliRunner()
    handlers = logging.getLogger().handlers[:]
    levels = {name: logging.getLogger(name).level for name in ("", "engram_audit", "azure")}
    try:
        with _working_directory(cwd), runner.isolation(input=stdin, env=env) as streams:
            code = cli_run(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    finally:
        logging.getLogger().handlers[:] = handlers
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        SECRETS.clear()
    result = Result(code, stdout.decode("utf-8"), stderr.decode("utf-8"))
    assert "Traceback" not in result.stderr + result.stdout
    return result


def run_process(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "engram_audit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in result.stderr + result.stdout
    return result
