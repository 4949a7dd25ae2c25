"""Options and steps shared by the commands that evaluate: policy choice, sources, outputs."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.cli.terminal import check_output_target, out, stdout_is_terminal, write_file
from engram_audit.errors import InputError, Problem, UsageError
from engram_audit.model import Policy, Report, Severity, Source
from engram_audit.policy.loader import load_policy, policy_path_for
from engram_audit.reporters import FORMATS, console
from engram_audit.schemas import POLICY_SCHEMA, shipped

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def policy_options(command: F) -> F:
    command = click.option(
        "--policy-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default="policies",
        show_default=True,
        envvar="ENGRAM_AUDIT_POLICY_DIR",
        help="Where <env>.yaml policies live.",
    )(command)
    command = click.option(
        "--policy",
        "policy_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_POLICY",
        help="Policy file to use instead of <policy-dir>/<env>.yaml.",
    )(command)
    return click.option(
        "--env",
        "environment",
        required=True,
        envvar="ENGRAM_AUDIT_ENV",
        callback=_check_environment,
        help="Environment: staging, dev, uat, prod (or any policy you add).",
    )(command)


MAX_ENVIRONMENT_LENGTH = 64


def _check_environment(_: click.Context, __: click.Parameter, value: str) -> str:
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


def resolve_policy(environment: str, policy_path: Path | None, policy_dir: Path) -> Policy:
    path = policy_path or policy_path_for(environment, policy_dir)
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
    return click.option(
        "--fail-on",
        type=click.Choice([s.value for s in Severity]),
        default=Severity.LOW.value,
        show_default=True,
        envvar="ENGRAM_AUDIT_FAIL_ON",
        help="Lowest severity of a failure that makes the exit code 1.",
    )(command)


def emit_report(
    report: Report, fmt: str, output: Path | None, extra_outputs: tuple[str, ...]
) -> None:
    """Write every requested format; stdout always shows the console report unless it shows --format."""
    specs = [parse_output_spec(spec) for spec in extra_outputs]
    if output is not None:
        specs.insert(0, (fmt, output))
    # stdout first: findings are shown even when a report file cannot be written.
    if output is None and fmt != "console":
        out(FORMATS[fmt](report))
    else:
        out(console.render(report, color=stdout_is_terminal() and "NO_COLOR" not in os.environ))
    unwritable: list[Problem] = []
    for name, path in specs:
        try:
            write_file(path, FORMATS[name](report), what=f"{name} report", key=name)
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
