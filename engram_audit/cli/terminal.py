"""Everything the CLI prints goes through here, scrubbed of registered secrets."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from engram_audit.redaction import SECRETS, ScrubbingFilter


def configure_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    logging.getLogger("engram_audit").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if verbose < 2:
        # azure-core logs every request and response at INFO; keep CI logs readable.
        logging.getLogger("azure").setLevel(logging.WARNING)


def out(text: str, *, nl: bool = False) -> None:
    click.echo(SECRETS.scrub(text), nl=nl)


def fail(message: str) -> None:
    click.echo(SECRETS.scrub(f"engram-audit: {message}"), err=True)


def note(message: str) -> None:
    click.echo(SECRETS.scrub(message), err=True)


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRETS.scrub(text), encoding="utf-8")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
