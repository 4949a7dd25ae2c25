"""``engram-audit remediate REPORT.json -o DIR``: reviewed fix scripts from a report's failures."""

from __future__ import annotations

from pathlib import Path

import click

from engram_audit.cli.terminal import out
from engram_audit.gate.baseline import report_from_document
from engram_audit.gate.exit_codes import ExitCode
from engram_audit.inputs.json_source import load_json_document
from engram_audit.remediation.scripts import build


@click.command("remediate")
@click.argument("report", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output-dir",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for azure.sh, postgres-<database>.sql and README.md.",
)
def remediate_command(report: Path, output_dir: Path) -> int:
    """Write fix scripts for the failures of a JSON report (never runs them).

    \b
    DIR/azure.sh                 az commands, one block per server, one restart for static
                                 parameters
    DIR/postgres-<database>.sql  SQL for psql; statements that cannot run in a transaction
                                 (CREATE INDEX CONCURRENTLY, VACUUM) are marked and last
    DIR/README.md                what each file does and what needs a human decision
    Exit codes: 0 written · 2 bad input
    """
    parsed = report_from_document(load_json_document(report))
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, content in sorted(build(parsed).items()):
        path = output_dir / name
        path.write_text(content, encoding="utf-8")
        if name.endswith(".sh"):
            path.chmod(0o755)
        out(f"wrote {path}", nl=True)
    return int(ExitCode.CLEAN)
