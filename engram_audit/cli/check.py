"""``check`` (evaluate a saved snapshot or collect live, then gate) and ``collect``."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from engram_audit.cli.common import (
    emit_report,
    parse_sources,
    policy_options,
    report_options,
    resolve_policy,
    sources_option,
)
from engram_audit.cli.terminal import note
from engram_audit.engine import evaluate
from engram_audit.errors import UsageError
from engram_audit.gate import exit_code
from engram_audit.model import Severity
from engram_audit.snapshot_io import load_snapshot

log = logging.getLogger(__name__)


@click.command("check")
@policy_options
@sources_option
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Evaluate this saved snapshot offline instead of collecting live.",
)
@report_options
def check_command(
    environment: str,
    policy_path: Path | None,
    policy_dir: Path,
    sources: str,
    snapshot_path: Path | None,
    fail_on: str,
    fmt: str,
    output: Path | None,
    extra_outputs: tuple[str, ...],
) -> int:
    """Evaluate an environment against its policy and exit with a CI-gate code."""
    selected = parse_sources(sources)
    policy = resolve_policy(environment, policy_path, policy_dir)
    if snapshot_path is None:
        raise UsageError("give --snapshot FILE (live collection options: see --help)")
    snapshot = load_snapshot(snapshot_path)
    if snapshot.environment != environment:
        note(
            f"warning: snapshot {snapshot_path} was collected for {snapshot.environment!r}, "
            f"evaluating it against the {environment!r} policy"
        )
    report = evaluate(policy, snapshot, selected)
    emit_report(report, fmt, output, extra_outputs)
    return exit_code(report, Severity(fail_on))


@click.command("collect")
@policy_options
@sources_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the snapshot (JSON).",
)
def collect_command(
    environment: str, policy_path: Path | None, policy_dir: Path, sources: str, output: Path
) -> int:
    """Collect live state into a snapshot file, for evaluation now or later."""
    raise UsageError("live collection options are not available in this build")
