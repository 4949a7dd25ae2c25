"""Everything the CLI prints goes through here: scrubbed of registered secrets and made safe for
a terminal or CI log (see ``reporters.escaping``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.redaction import SECRETS, ScrubbingFilter
from engram_audit.reporters.escaping import terminal_safe

F = TypeVar("F", bound=Callable[..., Any])


def configure_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
    logging.getLogger("engram_audit").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if verbose < 2:
        # azure-core logs every request at INFO, and azure-identity explains each credential it
        # tried in a WARNING block; the CLI already says in one line why sign-in failed.
        logging.getLogger("azure").setLevel(logging.WARNING)
        logging.getLogger("azure.identity").setLevel(logging.ERROR)


def _raise_verbosity(_: click.Context, __: click.Parameter, count: int) -> None:
    if count:
        configure_logging(count)


def verbose_option(command: F) -> F:
    """``-v`` after the subcommand too (``engram-audit check -v``), as users type it."""
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        is_eager=True,
        callback=_raise_verbosity,
        help="Debug logging to stderr (-vv: libraries too).",
    )(command)


def out(text: str, *, nl: bool = False, colour: bool = False) -> None:
    """stdout; ``colour`` keeps the SGR codes of a console report rendered with colour."""
    click.echo(terminal_safe(SECRETS.scrub(text), allow_colour=colour), nl=nl, color=colour)


def fail(message: str) -> None:
    click.echo(terminal_safe(SECRETS.scrub(f"engram-audit: {message}")), err=True)


def note(message: str) -> None:
    click.echo(terminal_safe(SECRETS.scrub(message)), err=True)


def colour_wanted() -> bool:
    """Colour on a terminal unless NO_COLOR is set (https://no-color.org)."""
    return stdout_is_terminal() and not os.environ.get("NO_COLOR")


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRETS.scrub(text), encoding="utf-8")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
