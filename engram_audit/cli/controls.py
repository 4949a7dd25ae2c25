"""``controls``: framework coverage for a reviewer: each control -> rules -> environments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from engram_audit.checks.azure.controls import control_catalogue
from engram_audit.cli.terminal import out
from engram_audit.errors import UsageError
from engram_audit.gate.exit_codes import ExitCode
from engram_audit.policy.builtin import default_policy_dir
from engram_audit.policy.coverage import ControlCoverage, FrameworkCoverage, coverage
from engram_audit.policy.loader import environment_policies


@click.command("controls")
@click.argument("framework", required=False)
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of environment policies [default: ./policies if present, else the built-in set].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
)
def controls_command(framework: str | None, policy_dir: Path | None, fmt: str) -> int:
    """Which controls of FRAMEWORK (default: every framework) the policies enforce, by which
    rules, in which environments; and why each uncovered control is not checked.

    \b
    Frameworks: azure-policy (Azure Policy built-in definitions), mcsb (Microsoft cloud
    security benchmark), cis-azure-3.0.0 (CIS Microsoft Azure Foundations Benchmark v3.0.0),
    prowler (Prowler's checks).
    """
    catalogue = control_catalogue()
    if framework is not None and framework not in catalogue.frameworks:
        known = ", ".join(catalogue.frameworks)
        raise UsageError(f"unknown framework {framework!r}; known frameworks: {known}")
    directory = policy_dir or default_policy_dir()
    if not directory.is_dir():
        raise UsageError(f"no such policy directory: {directory}")
    policies = environment_policies(directory)
    if not policies:
        raise UsageError(f"no environment policy in {directory}")
    report = coverage(policies, [framework] if framework else None)
    if fmt == "json":
        out(json.dumps(coverage_json(report), indent=2, ensure_ascii=False), nl=True)
    elif fmt == "markdown":
        out(coverage_markdown(report))
    else:
        out(coverage_table(report))
    return ExitCode.CLEAN


def _enforced_by(item: ControlCoverage) -> list[str]:
    return [
        f"{e.rule}: " + ", ".join(f"{env} ({severity.value})" for env, severity in e.environments)
        for e in item.enforced_by
    ]


def _summary(framework: FrameworkCoverage) -> str:
    total = len(framework.controls)
    text = (
        f"{framework.enforced} of {total} controls enforced, "
        f"{framework.explained} not covered with the reason given"
    )
    if framework.unexplained:
        text += f", {len(framework.unexplained)} NOT COVERED WITHOUT A REASON"
    return text


def coverage_table(report: list[FrameworkCoverage]) -> str:
    lines: list[str] = []
    for framework in report:
        lines += [f"{framework.framework}: {framework.title} ({framework.version})"]
        for item in framework.controls:
            control = item.control
            lines.append(f"  {control.label}")
            if item.covered:
                lines += [f"      {line}" for line in _enforced_by(item)]
            else:
                lines.append(f"      not covered: {control.not_covered or 'NO REASON GIVEN'}")
            if control.note:
                lines.append(f"      note: {control.note}")
        lines += [f"  {_summary(framework)}", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def coverage_markdown(report: list[FrameworkCoverage]) -> str:
    """One table per framework: control, enforced by (rule: environments), notes and gaps."""
    lines: list[str] = []
    for framework in report:
        lines += [
            f"#### {_cell(framework.title)} (`{framework.framework}`)",
            "",
            _cell(_summary(framework)) + ".",
            "",
            "| Control | Enforced by (environments) | Note |",
            "|---|---|---|",
        ]
        for item in framework.controls:
            control = item.control
            label = f"`{control.id}`" + (f" {_cell(control.name)}" if control.name else "")
            if item.covered:
                enforced = "<br>".join(
                    f"`{e.rule}`: " + ", ".join(env for env, _ in e.environments)
                    for e in item.enforced_by
                )
                note = control.note
            else:
                enforced = "**not covered**"
                note = control.not_covered or "no reason given"
            lines.append(f"| {label} | {enforced} | {_cell(note)} |")
        lines.append("")
    return "\n".join(lines)


def coverage_json(report: list[FrameworkCoverage]) -> dict[str, Any]:
    return {
        "frameworks": [
            {
                "id": framework.framework,
                "title": framework.title,
                "version": framework.version,
                "source": framework.source,
                "enforced": framework.enforced,
                "not_covered_explained": framework.explained,
                "not_covered_unexplained": len(framework.unexplained),
                "controls": [
                    {
                        "id": item.control.id,
                        "key": item.control.key,
                        "name": item.control.name,
                        "source": item.control.source,
                        "enforced_by": [
                            {
                                "rule": e.rule,
                                "check": e.check,
                                "environments": [
                                    {"environment": env, "severity": severity.value}
                                    for env, severity in e.environments
                                ],
                            }
                            for e in item.enforced_by
                        ],
                        **({"not_covered": item.control.not_covered} if not item.covered else {}),
                        **({"note": item.control.note} if item.control.note else {}),
                    }
                    for item in framework.controls
                ],
            }
            for framework in report
        ]
    }
