"""``check`` (evaluate saved snapshots, or collect live, then gate) and ``collect``, for one
environment or several (``--env`` repeated, ``--all`` from the inventory)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engram_audit.cli.azure_options import azure_options
from engram_audit.cli.common import (
    allow_empty_option,
    check_environment_names,
    check_report_targets,
    emit_reports,
    parse_show,
    parse_sources,
    report_options,
    sources_option,
)
from engram_audit.cli.completion import complete_environments
from engram_audit.cli.context import run_context
from engram_audit.cli.estate import EnvironmentRun, RunRequest, plan_runs
from engram_audit.cli.gate_options import GateOptions, gate_options, prepare_gate
from engram_audit.cli.postgres_options import postgres_options
from engram_audit.cli.terminal import (
    check_output_target,
    note,
    out,
    stderr_is_terminal,
    verbose_option,
    write_file,
)
from engram_audit.collectors.azure.request import AzureRequest, no_server_found
from engram_audit.collectors.run import LiveTargets, collect_live, collect_planned
from engram_audit.engine import evaluate
from engram_audit.errors import UsageError
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.model import Policy, Report, Snapshot, Source
from engram_audit.model.inventory import INVENTORY_FILE
from engram_audit.model.report import RunContext
from engram_audit.model.snapshot_io import dump_snapshot
from engram_audit.policy.planning import plan_for

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _collect(policy: Policy, selected: frozenset[Source], targets: LiveTargets) -> Snapshot:
    if targets.iac is not None:
        return _collect_planned(policy, targets)
    live = {s for s, t in ((Source.AZURE, targets.azure), (Source.POSTGRES, targets.postgres)) if t}
    live.add(Source.DSN)  # application DSNs are read from the environment: no target needed
    if not live & selected:
        raise UsageError(
            "nothing to collect: give an Azure target (--subscription ...), a PostgreSQL target "
            "(--dsn, --dsn-env, PGHOST), or evaluate a saved --snapshot FILE"
        )
    missing = sorted(s.value for s in selected - live)
    if missing:
        note(
            f"note: no target for {', '.join(missing)}: its rules will be ERROR "
            f"(choose what a run covers with --sources)"
        )
    snapshot = collect_live(
        plan_for(policy), selected, targets, os.environ, show_progress=stderr_is_terminal()
    )
    for issue in snapshot.issues:
        where = f"{issue.resource}" + (f" [{issue.part}]" if issue.part else "")
        note(f"engram-audit: could not collect {issue.source.value} {where}: {issue.reason}")
    for remark in snapshot.notes:
        where = f"{remark.resource}" + (f" [{remark.part}]" if remark.part else "")
        note(f"note: {remark.source.value} {where}: {remark.note}")
    accepted = _accepted_empty_azure_scope(snapshot, selected, targets.azure)
    if accepted is not None:
        note(f"note: {accepted}; --allow-empty accepts that: the azure rules are SKIP")
    return snapshot


def _collect_planned(policy: Policy, targets: LiveTargets) -> Snapshot:
    """The planned state of a plan or template: the Azure source of the run."""
    assert targets.iac is not None
    snapshot = collect_planned(policy.environment, targets.iac)
    origin = snapshot.origin
    if origin is not None:
        what = "plan" if origin.kind == "plan" else "template"
        servers = len(snapshot.azure.servers) if snapshot.azure else 0
        note(
            f"note: judging the planned state of {targets.iac.path} ({what}"
            + (f", {origin.tool}" if origin.tool else "")
            + f"): {servers} flexible server(s); checks of running servers are SKIP "
            "(needs live state)"
        )
        for change in origin.changes:
            verb = "replaces" if "create" in change.actions else "deletes"
            because = (
                f" because of {', '.join(change.replace_paths)}" if change.replace_paths else ""
            )
            note(f"note: the plan {verb} {change.address}{because}")
    for issue in snapshot.issues:
        where = issue.resource + (f" [{issue.part}]" if issue.part else "")
        note(f"engram-audit: could not read {where}: {issue.reason}")
    return snapshot


def iac_options(command: F) -> F:
    """--terraform-plan, --arm-template, --arm-parameters: planned state as the Azure source."""
    command = click.option(
        "--arm-parameters",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_ARM_PARAMETERS",
        help="Parameters file for --arm-template.",
    )(command)
    command = click.option(
        "--arm-template",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_ARM_TEMPLATE",
        help="Judge an ARM template (JSON or compiled Bicep) before deployment instead of the "
        "live estate; excludes the live-ARM flags.",
    )(command)
    return click.option(
        "--terraform-plan",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_TERRAFORM_PLAN",
        help="Judge a plan (terraform show -json PLANFILE; OpenTofu too) before apply instead "
        "of the live estate; excludes the live-ARM flags.",
    )(command)


def _accepted_empty_azure_scope(
    snapshot: Snapshot, selected: frozenset[Source], request: AzureRequest | None
) -> str | None:
    """What was empty, when Azure found no server without any issue under --allow-empty."""
    if (
        request is None
        or not request.allow_empty
        or Source.AZURE not in selected
        or snapshot.azure is None
        or snapshot.azure.servers
        or any(issue.source is Source.AZURE for issue in snapshot.issues)
    ):
        return None
    return no_server_found(request)


def estate_options(command: F) -> F:
    """--env (repeatable), --all, --config, --policy, --policy-dir: which environments, which policies."""
    command = click.option(
        "--policy-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        envvar="ENGRAM_AUDIT_POLICY_DIR",
        help="Where <env>.yaml policies live [default: ./policies if present, else the built-in set].",
    )(command)
    command = click.option(
        "--policy",
        "policy_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_POLICY",
        help="Policy file to use instead of <policy-dir>/<env>.yaml (one environment).",
    )(command)
    command = click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="ENGRAM_AUDIT_CONFIG",
        help=f"Inventory of environments and targets [default: ./{INVENTORY_FILE} when present].",
    )(command)
    command = click.option(
        "--all",
        "all_environments",
        is_flag=True,
        help="Every environment of the inventory, in one run.",
    )(command)
    return click.option(
        "--env",
        "environments",
        multiple=True,
        envvar="ENGRAM_AUDIT_ENV",
        shell_complete=complete_environments,
        callback=check_environment_names,
        help="Environment (repeatable): staging, dev, uat, prod, or any policy you add.",
    )(command)


def _snapshot_for(run: EnvironmentRun, selected: frozenset[Source]) -> Snapshot:
    if run.snapshot is not None:
        if run.snapshot.environment != run.name:
            note(
                f"warning: snapshot {run.snapshot_path} was collected for "
                f"{run.snapshot.environment!r}, evaluating it against the {run.name!r} policy"
            )
        return run.snapshot
    return _collect(run.policy, selected, run.targets)


@click.command("check")
@verbose_option
@estate_options
@sources_option
@click.option(
    "--snapshot",
    "snapshot_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Evaluate this saved snapshot offline instead of collecting live (repeatable: one "
    "per environment; --env is optional when each names its environment).",
)
@click.option(
    "--save-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write what was collected live to this file (one environment; with several, "
    "ENV in the name is replaced by each environment's name).",
)
@click.option(
    "--iac-root",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="ENGRAM_AUDIT_IAC_ROOT",
    help="Directory of the Terraform or Bicep sources: SARIF results of a plan or template "
    "point at the file and line of each resource block.",
)
@iac_options
@azure_options
@postgres_options
@allow_empty_option
@gate_options
@report_options
def check_command(
    environments: tuple[str, ...],
    all_environments: bool,
    config: Path | None,
    policy_path: Path | None,
    policy_dir: Path | None,
    sources: str,
    snapshot_paths: tuple[Path, ...],
    save_snapshot: Path | None,
    fail_on: str | None,
    fmt: str,
    show: str | None,
    quiet: bool,
    output: Path | None,
    extra_outputs: tuple[str, ...],
    gate: GateOptions,
    iac_root: Path | None,
    **target_options: Any,
) -> int:
    """Evaluate environments against their policies and exit with a CI-gate code.

    Give --snapshot FILE to evaluate offline, or live targets (Azure and/or PostgreSQL, by
    flags or from the inventory) to collect read-only first. With several environments the
    exit code is the worst of them (3 over 1 over 0).
    """
    selected = parse_sources(sources)
    shown = parse_show(show)
    check_report_targets(output, fmt, extra_outputs)
    if save_snapshot is not None:
        check_output_target(save_snapshot, "snapshot")
    runs = plan_runs(
        RunRequest(
            environments=environments,
            all_environments=all_environments,
            snapshots=snapshot_paths,
            config=config,
            policy_path=policy_path,
            policy_dir=policy_dir,
            fail_on=fail_on,
            gate=gate,
            options=target_options,
        )
    )
    if save_snapshot is not None and len(runs) > 1 and "ENV" not in save_snapshot.name:
        raise UsageError("--save-snapshot with several environments needs ENV in the file name")
    context = run_context(os.environ)
    reports = []
    codes = []
    for run in runs:
        prepared = prepare_gate(run.gate)
        snapshot = _snapshot_for(run, selected)
        if save_snapshot is not None and run.snapshot is None:
            target = save_snapshot.with_name(save_snapshot.name.replace("ENV", run.name))
            write_file(
                target if len(runs) > 1 else save_snapshot,
                dump_snapshot(snapshot),
                what="snapshot",
            )
        log.debug(
            "snapshot of %s collected at %s: sections %s, %d collection issue(s)",
            snapshot.environment,
            snapshot.collected_at.isoformat(),
            ", ".join(s.value for s in Source if snapshot.section(s) is not None) or "none",
            len(snapshot.issues),
        )
        evaluated = evaluate(run.policy, snapshot, selected).model_copy(
            update={"fail_on": run.fail_on, "context": _with_shard(context, snapshot, selected)}
        )
        if snapshot.origin is not None:
            evaluated = _planned_report(evaluated, snapshot, iac_root)
        elif iac_root is not None:
            raise UsageError(
                "--iac-root locates a plan's or template's resources: give --terraform-plan, "
                "--arm-template or a snapshot collected from one"
            )
        result = prepared.apply(evaluated)
        reports.append(result.report)
        codes.append(exit_code(result.report, only_new=run.gate.fail_on_new))
        for line in result.notes:
            note(line if len(runs) == 1 else f"{run.name}: {line}")
    emit_reports(reports, fmt, output, extra_outputs, show=shown, quiet=quiet)
    return worst(codes)


def _with_shard(
    context: RunContext | None, snapshot: Snapshot, selected: frozenset[Source]
) -> RunContext | None:
    """The run's context, plus the shard its Azure servers are (``--shard I/N``, live or from a
    sharded snapshot): ``merge`` needs it to know the set of shards is complete."""
    shard = snapshot.azure.shard if snapshot.azure is not None else None
    if shard is None or Source.AZURE not in selected:
        return context
    return (context or RunContext()).model_copy(update={"shard": shard})


def _planned_report(report: Report, snapshot: Snapshot, iac_root: Path | None) -> Report:
    """Findings named by the plan's or template's resource (and, with --iac-root, its file and
    line), and a finding for each server the plan deletes or replaces."""
    from engram_audit.collectors.iac.locate import locate_findings

    return locate_findings(report, snapshot, iac_root)


def worst(codes: list[ExitCode]) -> ExitCode:
    """3 over 1 over 0: incomplete anywhere makes the whole run incomplete."""
    for code in (ExitCode.INCOMPLETE, ExitCode.FAILED):
        if code in codes:
            return code
    return ExitCode.CLEAN


@click.command("collect")
@verbose_option
@estate_options
@sources_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the snapshot (JSON), for one environment.",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write one snapshot per environment here, as <env>.json.",
)
@iac_options
@azure_options
@postgres_options
@allow_empty_option
def collect_command(
    environments: tuple[str, ...],
    all_environments: bool,
    config: Path | None,
    policy_path: Path | None,
    policy_dir: Path | None,
    sources: str,
    output: Path | None,
    output_dir: Path | None,
    **target_options: Any,
) -> int:
    """Collect live state, read-only, into snapshot files to evaluate now or later."""
    selected = parse_sources(sources)
    runs = plan_runs(
        RunRequest(
            environments=environments,
            all_environments=all_environments,
            snapshots=(),
            config=config,
            policy_path=policy_path,
            policy_dir=policy_dir,
            fail_on=None,
            gate=GateOptions(),
            options=target_options,
        )
    )
    if (output is None) == (output_dir is None):
        raise UsageError("give --output FILE (one environment) or --output-dir DIR")
    if output is not None and len(runs) > 1:
        raise UsageError("several environments: give --output-dir DIR (one <env>.json each)")
    if output is not None:
        check_output_target(output, "snapshot")
    incomplete = False
    for run in runs:
        snapshot = _collect(run.policy, selected, run.targets)
        target = output if output is not None else (output_dir or Path(".")) / f"{run.name}.json"
        write_file(target, dump_snapshot(snapshot), what="snapshot")
        what = (
            f"planned state of {snapshot.origin.files[0].path}"
            if snapshot.origin is not None
            else ", ".join(sorted(s.value for s in selected))
        )
        out(f"wrote {target} ({what})", nl=True)
        incomplete = incomplete or bool(snapshot.issues)
    return ExitCode.INCOMPLETE if incomplete else ExitCode.CLEAN
