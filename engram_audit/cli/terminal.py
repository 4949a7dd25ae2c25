"""Everything the CLI prints goes through here: scrubbed of registered secrets and made safe for
a terminal or CI log (see ``reporters.escaping``)."""

from __future__ import annotations

import logging
import os
import shutil
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


_NO_COLOUR_FLAG: list[bool] = [False]  # set by --no-color on the group or a command


def colour_wanted() -> bool:
    """--no-color and NO_COLOR (https://no-color.org) win, then FORCE_COLOR, then a terminal."""
    if _NO_COLOUR_FLAG[0] or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stdout_is_terminal()


def _no_colour(_: click.Context, __: click.Parameter, value: bool) -> None:
    if value:
        _NO_COLOUR_FLAG[0] = True


def no_color_option(command: F) -> F:
    """``--no-color`` on the group and after any subcommand, as users type it."""
    return click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_no_colour,
        help="No colour (also: NO_COLOR set; FORCE_COLOR forces colour without a terminal).",
    )(command)


def reset_colour_flag() -> None:
    _NO_COLOUR_FLAG[0] = False


def output_width() -> int | None:
    """COLUMNS when set (as click does, terminal or not), else the terminal's width, else no
    wrapping (a CI log wraps by itself)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stdout_is_terminal():
        return shutil.get_terminal_size().columns
    return None


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRETS.scrub(text), encoding="utf-8")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
