"""``check`` (evaluate a saved snapshot, or collect live, then gate) and ``collect``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from engram_audit.cli.azure_options import azure_options, azure_request_from_options
from engram_audit.cli.common import (
    check_report_targets,
    emit_report,
    parse_sources,
    policy_options,
    report_options,
    resolve_policy,
    sources_option,
)
from engram_audit.cli.gate_options import GateOptions, gate_options, prepare_gate
from engram_audit.cli.postgres_options import postgres_options, postgres_request_from_options
from engram_audit.cli.terminal import (
    check_output_target,
    note,
    out,
    stderr_is_terminal,
    verbose_option,
    write_file,
)
from engram_audit.collectors.run import LiveTargets, collect_live
from engram_audit.engine import evaluate
from engram_audit.errors import UsageError
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.model import Policy, Severity, Snapshot, Source
from engram_audit.model.snapshot_io import dump_snapshot, load_snapshot
from engram_audit.policy.planning import plan_for

log = logging.getLogger(__name__)


def _live_targets(options: dict[str, Any]) -> LiveTargets:
    return LiveTargets(
        azure=azure_request_from_options(options),
        postgres=postgres_request_from_options(options),
    )


def _collect(policy: Policy, selected: frozenset[Source], targets: LiveTargets) -> Snapshot:
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
    return snapshot


@click.command("check")
@verbose_option
@policy_options
@sources_option
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Evaluate this saved snapshot offline instead of collecting live.",
)
@click.option(
    "--save-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write what was collected live to this file.",
)
@azure_options
@postgres_options
@gate_options
@report_options
def check_command(
    environment: str,
    policy_path: Path | None,
    policy_dir: Path,
    sources: str,
    snapshot_path: Path | None,
    save_snapshot: Path | None,
    fail_on: str,
    fmt: str,
    output: Path | None,
    extra_outputs: tuple[str, ...],
    gate: GateOptions,
    **target_options: Any,
) -> int:
    """Evaluate an environment against its policy and exit with a CI-gate code.

    Give --snapshot FILE to evaluate offline, or live targets (Azure and/or PostgreSQL)
    to collect read-only first.
    """
    selected = parse_sources(sources)
    check_report_targets(output, fmt, extra_outputs)
    if save_snapshot is not None:
        check_output_target(save_snapshot, "snapshot")
    policy = resolve_policy(environment, policy_path, policy_dir)
    prepared = prepare_gate(gate)
    targets = _live_targets(target_options)
    if snapshot_path is not None:
        if targets.azure or targets.postgres:
            raise UsageError("give either --snapshot FILE or live targets, not both")
        snapshot = load_snapshot(snapshot_path)
        if snapshot.environment != environment:
            note(
                f"warning: snapshot {snapshot_path} was collected for {snapshot.environment!r}, "
                f"evaluating it against the {environment!r} policy"
            )
    else:
        snapshot = _collect(policy, selected, targets)
        if save_snapshot is not None:
            write_file(save_snapshot, dump_snapshot(snapshot), what="snapshot")
    log.debug(
        "snapshot of %s collected at %s: sections %s, %d collection issue(s)",
        snapshot.environment,
        snapshot.collected_at.isoformat(),
        ", ".join(s.value for s in Source if snapshot.section(s) is not None) or "none",
        len(snapshot.issues),
    )
    evaluated = evaluate(policy, snapshot, selected).model_copy(
        update={"fail_on": Severity(fail_on)}
    )
    result = prepared.apply(evaluated)
    emit_report(result.report, fmt, output, extra_outputs)
    for line in result.notes:
        note(line)
    return exit_code(result.report, only_new=gate.fail_on_new)


@click.command("collect")
@verbose_option
@policy_options
@sources_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the snapshot (JSON).",
)
@azure_options
@postgres_options
def collect_command(
    environment: str,
    policy_path: Path | None,
    policy_dir: Path,
    sources: str,
    output: Path,
    **target_options: Any,
) -> int:
    """Collect live state, read-only, into a snapshot file to evaluate now or later."""
    selected = parse_sources(sources)
    check_output_target(output, "snapshot")
    policy = resolve_policy(environment, policy_path, policy_dir)
    snapshot = _collect(policy, selected, _live_targets(target_options))
    write_file(output, dump_snapshot(snapshot), what="snapshot")
    out(f"wrote {output} ({', '.join(sorted(s.value for s in selected))})", nl=True)
    return ExitCode.INCOMPLETE if snapshot.issues else ExitCode.CLEAN
