"""Everything the CLI prints goes through here: scrubbed of registered secrets and made safe for
a terminal or CI log (see ``reporters.escaping``)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import path_name_problem, special_kind
from engram_audit.redaction import SECRETS, ScrubbingFilter
from engram_audit.reporters.escaping import terminal_safe

F = TypeVar("F", bound=Callable[..., Any])
_SURROGATE = re.compile("[\ud800-\udfff]")
_WRITE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


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


def _encodable(text: str) -> str:
    """A lone surrogate (from a hostile server's JSON, say) cannot be encoded: show it escaped."""
    if _SURROGATE.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def out(text: str, *, nl: bool = False, colour: bool = False) -> None:
    """stdout; ``colour`` keeps the SGR codes of a console report rendered with colour."""
    click.echo(
        terminal_safe(_encodable(SECRETS.scrub(text)), allow_colour=colour), nl=nl, color=colour
    )


def fail(message: str) -> None:
    click.echo(terminal_safe(_encodable(SECRETS.scrub(f"engram-audit: {message}"))), err=True)


def note(message: str) -> None:
    click.echo(terminal_safe(_encodable(SECRETS.scrub(message))), err=True)


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


def _unwritable(path: Path, what: str, key: str, reason: str) -> InputError:
    return InputError([Problem(str(path), 1, 1, key, f"cannot write the {what}: {reason}")])


def check_output_target(path: Path, what: str = "file", key: str = "") -> None:
    """Refuse, before any work is done, an output path that is a directory, FIFO or device:
    writing to a FIFO blocks until someone reads it, and a device is nobody's report."""
    invalid = path_name_problem(str(path))
    if invalid:
        raise _unwritable(path, what, key, f"the path {invalid}")
    try:
        kind = special_kind(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    except OSError as error:
        raise _unwritable(path, what, key, str(error.strerror or error)) from None
    if kind:
        raise _unwritable(path, what, key, f"it is {kind}, not a regular file")


def write_file(path: Path, text: str, *, what: str = "file", key: str = "") -> None:
    """Write an output file, scrubbed of secrets; a special file as target or any OS failure is
    an InputError (exit 2) naming the path: never a hang, never a traceback."""
    check_output_target(path, what, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_NONBLOCK: a FIFO swapped in after the check fails (ENXIO) instead of blocking.
        descriptor = os.open(path, _WRITE_FLAGS, 0o666)
    except OSError as error:
        raise _unwritable(path, what, key, str(error.strerror or error)) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", errors="backslashreplace") as handle:
            kind = special_kind(os.fstat(handle.fileno()).st_mode)
            if kind:
                raise _unwritable(path, what, key, f"it is {kind}, not a regular file")
            handle.write(SECRETS.scrub(text))
    except OSError as error:
        raise _unwritable(path, what, key, str(error.strerror or error)) from None


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
