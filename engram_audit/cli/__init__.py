"""The command line: parse flags, call the core, write files, return an exit code.

Only here are errors turned into messages: a user never sees a traceback (``-v`` logs one).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from engram_audit import __version__
from engram_audit.cli.check import check_command, collect_command
from engram_audit.cli.controls import controls_command
from engram_audit.cli.demo import demo_command
from engram_audit.cli.diff import diff_command
from engram_audit.cli.merge import merge_command
from engram_audit.cli.policy import (
    checks_command,
    environments_command,
    explain_command,
    init_command,
    schema_command,
    validate_command,
)
from engram_audit.cli.remediate import remediate_command
from engram_audit.cli.terminal import configure_logging, fail, no_color_option, reset_colour_flag
from engram_audit.errors import EngramAuditError
from engram_audit.gate.exit_codes import ExitCode

log = logging.getLogger("engram_audit")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="engram-audit")
@click.option("-v", "--verbose", count=True, help="Debug logging to stderr (-vv: libraries too).")
@no_color_option
def cli(verbose: int) -> None:
    """Policy-as-code compliance for Zep's PostgreSQL + pgvector store on Azure Flexible Server.

    \b
    Exit codes: 0 clean · 1 a failure at or above --fail-on · 2 usage error or invalid input
                3 incomplete: something could not be collected or evaluated (wins over 1)
    """
    configure_logging(verbose)


for command in (
    init_command,
    validate_command,
    checks_command,
    explain_command,
    environments_command,
    controls_command,
    schema_command,
    check_command,
    collect_command,
    diff_command,
    merge_command,
    remediate_command,
    demo_command,
):
    cli.add_command(command)


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line (``sys.argv`` when ``argv`` is None) and return its exit code."""
    reset_colour_flag()
    try:
        args = list(argv) if argv is not None else None
        code = cli.main(args=args, prog_name="engram-audit", standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted")
        code = ExitCode.INVALID_INPUT
    except click.ClickException as error:
        error.show()
        code = ExitCode.INVALID_INPUT
    except EngramAuditError as error:
        fail(str(error))
        code = error.exit_code
    except KeyboardInterrupt:
        fail("interrupted")
        code = ExitCode.INCOMPLETE
    except Exception as error:  # the promise is "never a traceback"; -v keeps it for bug reports
        log.debug("internal error", exc_info=True)
        fail(f"internal error: {type(error).__name__}: {error} (run with -v for details)")
        code = ExitCode.INCOMPLETE
    return int(code or 0)


def main(args: Sequence[str] | None = None) -> None:
    """The console entry point; ``args`` (default: ``sys.argv[1:]``) lets tests run it in-process."""
    sys.exit(run(args))
