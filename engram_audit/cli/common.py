"""Options and steps shared by the commands that evaluate: policy choice, sources, outputs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.cli.terminal import (
    check_output_target,
    colour_wanted,
    no_color_option,
    out,
    output_width,
    write_file,
)
from engram_audit.errors import InputError, Problem, UsageError
from engram_audit.model import Policy, Report, Severity, Source, Status
from engram_audit.policy.builtin import default_policy_dir
from engram_audit.policy.loader import load_policy, policy_path_for
from engram_audit.reporters import FORMATS, MANY_FORMATS, console
from engram_audit.schemas import POLICY_SCHEMA, shipped

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


MAX_ENVIRONMENT_LENGTH = 64


def check_environment_name(value: str) -> str:
    """An environment is spelled as policies spell ``environment:`` (the policy schema's
    pattern); it also names ``<policy-dir>/<env>.yaml``, so no separators, NUL or huge names."""
    pattern = shipped(POLICY_SCHEMA)["properties"]["environment"]["pattern"]
    if len(value) > MAX_ENVIRONMENT_LENGTH or not re.fullmatch(pattern, value):
        shown = value if len(value) <= MAX_ENVIRONMENT_LENGTH else f"{value[:20]}…"
        raise click.BadParameter(
            f"{shown!r} is not an environment name: lower-case letters, digits, '_' and '-', "
            f"starting with a letter, at most {MAX_ENVIRONMENT_LENGTH} characters"
        )
    return value


def check_environment_names(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    return tuple(check_environment_name(value) for value in values)


def resolve_policy(environment: str, policy_path: Path | None, policy_dir: Path | None) -> Policy:
    path = policy_path or policy_path_for(environment, policy_dir or default_policy_dir())
    policy = load_policy(path)
    log.debug(
        "policy %s: %d enabled rules from %s",
        policy.environment,
        len(policy.enabled_rules()),
        " <- ".join(reversed(policy.files)),
    )
    if policy.environment != environment:
        raise UsageError(
            f"{path} is the policy of environment {policy.environment!r}, not {environment!r}"
        )
    return policy


def parse_sources(value: str) -> frozenset[Source]:
    if not value.strip():
        raise click.BadParameter(
            "give at least one of azure, postgres, dsn", param_hint="--sources"
        )
    chosen = set()
    for name in value.split(","):
        name = name.strip().lower()
        try:
            chosen.add(Source(name))
        except ValueError:
            known = ", ".join(sorted(s.value for s in Source))
            raise click.BadParameter(f"unknown source {name!r}; choose from {known}") from None
    return frozenset(chosen)


def sources_option(command: F) -> F:
    return click.option(
        "--sources",
        default="azure,postgres,dsn",
        show_default=True,
        envvar="ENGRAM_AUDIT_SOURCES",
        help="Comma-separated sources this run covers; rules of others are SKIP.",
    )(command)


def allow_empty_option(command: F) -> F:
    """``--allow-empty`` for the whole run: every collector reads it from the options."""
    return click.option(
        "--allow-empty",
        is_flag=True,
        envvar="ENGRAM_AUDIT_ALLOW_EMPTY",
        help="Accept a scope with nothing in it (Azure discovery that finds no flexible server; "
        "a PostgreSQL scope whose schemas do not exist): its rules are SKIP instead of the run "
        "exiting 3.",
    )(command)


def parse_output_spec(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition(":")
    if not sep or not path or name not in FORMATS:
        raise click.BadParameter(
            f"expected FORMAT:PATH with FORMAT one of {', '.join(FORMATS)}, got {spec!r}"
        )
    return name, Path(path)


def report_options(command: F) -> F:
    command = click.option(
        "-o",
        "extra_outputs",
        multiple=True,
        metavar="FORMAT:PATH",
        help=f"Also write FORMAT ({', '.join(FORMATS)}) to PATH; repeatable.",
    )(command)
    command = click.option(
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write --format here instead of stdout.",
    )(command)
    command = click.option(
        "--format", "fmt", type=click.Choice(list(FORMATS)), default="console", show_default=True
    )(command)
    command = click.option(
        "--show",
        "show",
        default=None,
        metavar="STATUSES",
        help="Statuses the console lists in full: all, or a comma list of fail,error,waived,skip,"
        "pass [default: fail,error,waived; the others one line per rule].",
    )(command)
    command = click.option(
        "--quiet", "-q", is_flag=True, help="Console: print only the summary line."
    )(command)
    command = no_color_option(command)
    return click.option(
        "--fail-on",
        type=click.Choice([s.value for s in Severity]),
        default=None,
        envvar="ENGRAM_AUDIT_FAIL_ON",
        help="Lowest severity of a failure that makes the exit code 1 "
        "[default: the inventory's fail_on for the environment, else low].",
    )(command)


def parse_show(value: str | None) -> frozenset[Status]:
    if value is None:
        return console.DEFAULT_SHOW
    if value.strip().lower() == "all":
        return frozenset(Status)
    chosen = set()
    for name in value.split(","):
        try:
            chosen.add(Status(name.strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in Status)
            raise click.BadParameter(
                f"unknown status {name.strip()!r}; choose all or from {known}", param_hint="--show"
            ) from None
    return frozenset(chosen)


def emit_report(
    report: Report, fmt: str, output: Path | None, extra_outputs: tuple[str, ...]
) -> None:
    """Write every requested format; stdout always shows the console report unless it shows --format."""
    emit_reports([report], fmt, output, extra_outputs)


def console_text(
    reports: list[Report], *, show: frozenset[Status] = console.DEFAULT_SHOW, quiet: bool = False
) -> tuple[str, bool]:
    """The console report for stdout as the terminal wants it, and whether it has colour."""
    if quiet:
        return "".join(console.render_summary(report) for report in reports), False
    colour = colour_wanted()
    width = output_width()
    if len(reports) == 1:
        return console.render(reports[0], color=colour, width=width, show=show), colour
    return console.render_many(reports, color=colour, width=width, show=show), colour


def _render(name: str, reports: list[Report]) -> str:
    return FORMATS[name](reports[0]) if len(reports) == 1 else MANY_FORMATS[name](reports)


def emit_reports(
    reports: list[Report],
    fmt: str,
    output: Path | None,
    extra_outputs: tuple[str, ...],
    *,
    show: frozenset[Status] = console.DEFAULT_SHOW,
    quiet: bool = False,
) -> None:
    """One output per format for the whole run: several environments share one file."""
    specs = [parse_output_spec(spec) for spec in extra_outputs]
    if output is not None:
        specs.insert(0, (fmt, output))
    # stdout first: findings are shown even when a report file cannot be written.
    if output is None and fmt != "console":
        out(_render(fmt, reports))
    else:
        rendered, colour = console_text(reports, show=show, quiet=quiet)
        out(rendered, colour=colour)
    unwritable: list[Problem] = []
    for name, path in specs:
        try:
            write_file(path, _render(name, reports), what=f"{name} report", key=name)
        except InputError as error:
            unwritable += error.problems
            continue
        log.debug("wrote %s report to %s", name, path)
    if unwritable:
        raise InputError(unwritable)


def check_report_targets(output: Path | None, fmt: str, extra_outputs: tuple[str, ...]) -> None:
    """Refuse special files as report targets before anything is collected or evaluated."""
    specs = [parse_output_spec(spec) for spec in extra_outputs]
    if output is not None:
        specs.insert(0, (fmt, output))
    for name, path in specs:
        check_output_target(path, f"{name} report", name)
