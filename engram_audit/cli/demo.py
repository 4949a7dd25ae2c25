"""``demo``: the whole job on an embedded default, for a first run on a fresh machine.

Starts a throwaway PostgreSQL 18 + pgvector seeded with a Zep-shaped database (with planted
problems), collects it live, combines it with the bundled Azure state of production,
evaluates the prod policy, prints the findings, writes every report format and stops the
server.
"""

from __future__ import annotations

from pathlib import Path

import click

from engram_audit.cli.common import resolve_policy
from engram_audit.cli.terminal import (
    colour_wanted,
    note,
    out,
    stderr_is_terminal,
    verbose_option,
    write_file,
)
from engram_audit.collectors.run import CollectionFailed, assemble, merge
from engram_audit.engine import evaluate
from engram_audit.errors import UsageError
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.model import ALL_SOURCES, Severity, Source
from engram_audit.model.snapshot_io import dump_snapshot, load_snapshot
from engram_audit.policy.planning import plan_for
from engram_audit.reporters import FORMATS, console

REPORT_FILES = {
    "json": "report.json",
    "sarif": "report.sarif",
    "junit": "report.junit.xml",
    "markdown": "report.md",
    "console": "report.txt",
}


@click.command("demo")
@verbose_option
@click.option(
    "--azure-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    default="fixtures/snapshots/prod-drifted.json",
    show_default=True,
    help="Bundled Azure (and DSN) state of production to combine with the live database.",
)
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="policies",
    show_default=True,
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="engram-audit-reports",
    show_default=True,
    help="Where the reports and the combined snapshot are written.",
)
def demo_command(azure_snapshot: Path, policy_dir: Path, output_dir: Path) -> int:
    """Audit a throwaway PostgreSQL + pgvector (seeded Zep schema) against the prod policy."""
    from engram_audit.demo.database import collect_demo  # needs the 'demo' extra
    from engram_audit.demo.server import EmbeddedServerError

    if not policy_dir.is_dir() or not azure_snapshot.is_file():
        raise UsageError(
            "the demo uses the repository's policies/ and fixtures/snapshots/: run it from the "
            "repository root (scripts/demo), or pass --policy-dir and --azure-snapshot"
        )
    policy = resolve_policy("prod", None, policy_dir)
    bundled = load_snapshot(azure_snapshot)
    progress = note if stderr_is_terminal() else None
    try:
        collected = collect_demo(plan_for(policy), progress)
    except EmbeddedServerError as error:
        raise CollectionFailed(f"could not start the demo database: {error}") from None
    live = assemble("prod", postgres=collected.section, issues=collected.issues)
    snapshot = merge(bundled, live, frozenset({Source.POSTGRES}))
    report = evaluate(policy, snapshot, ALL_SOURCES)

    colour = colour_wanted()
    out(console.render(report, color=colour), colour=colour)
    write_file(output_dir / "snapshot.json", dump_snapshot(snapshot))
    for name, filename in REPORT_FILES.items():
        write_file(output_dir / filename, FORMATS[name](report))
    gate = exit_code(report, Severity.LOW)
    out(
        f"\nReports written to {output_dir}/ ({', '.join(REPORT_FILES.values())}, snapshot.json).\n"
        f"Live: PostgreSQL database {policy.scope.database!r} on a throwaway server (stopped). "
        f"Bundled: Azure and DSN state from {azure_snapshot}.\n"
        f"A CI gate (engram-audit check --env prod ...) would exit {int(gate)}.",
        nl=True,
    )
    return ExitCode.INCOMPLETE if collected.issues else ExitCode.CLEAN
