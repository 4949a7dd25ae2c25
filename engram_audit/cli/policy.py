"""Commands about policies and the check catalogue: validate, checks, explain, schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engram_audit.checks import CATALOGUE, get_check
from engram_audit.cli.terminal import fail, out
from engram_audit.errors import InputError, UsageError
from engram_audit.gate.exit_codes import ExitCode
from engram_audit.model.inventory import INVENTORY_FILE
from engram_audit.policy.builtin import default_policy_dir
from engram_audit.policy.inventory import find_inventory, load_inventory
from engram_audit.policy.loader import validate_paths
from engram_audit.policy.presets import with_presets
from engram_audit.policy.starter import AlreadyThere, write_starter
from engram_audit.schemas import POLICY_SCHEMA, SNAPSHOT_SCHEMA, WAIVERS_SCHEMA, shipped
from engram_audit.schemas.generate import GENERATORS, render


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="ENGRAM_AUDIT_CONFIG",
    help=f"Inventory to validate too [default: ./{INVENTORY_FILE} when present].",
)
def validate_command(paths: tuple[Path, ...], config: Path | None) -> int:
    """Check policy files (default: ./policies if present, else the built-in set; a directory's
    presets/ too) and the inventory: every problem at once, with file:line:column."""
    targets = list(paths) or [default_policy_dir()]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(map(str, missing))}")
    checked, problems = validate_paths(with_presets(targets))
    inventory = find_inventory(config)
    inventory_note = ""
    if inventory is not None:
        try:
            load_inventory(inventory)
        except InputError as error:
            problems.extend(error.problems)
        inventory_note = f"; inventory {inventory} valid"
    if problems:
        fail(str(InputError(problems)).replace("\n", "\n"))
        fail(f"{len(problems)} problem(s) in {len(checked)} file(s)")
        return ExitCode.INVALID_INPUT
    out(f"{len(checked)} policy file(s) valid: {', '.join(checked)}{inventory_note}", nl=True)
    return ExitCode.CLEAN


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory: Path, force: bool) -> int:
    """Write policies/*.yaml (the shipped set, with the Zep layout presets in
    policies/presets/) and engram-audit.yaml, ready to fill in."""
    try:
        written = write_starter(directory, force=force)
    except AlreadyThere as error:
        shown = ", ".join(str(p) for p in error.paths[:3])
        more = f" and {len(error.paths) - 3} more" if len(error.paths) > 3 else ""
        raise UsageError(f"{shown}{more} already exist: use --force to overwrite") from None
    for path in written:
        out(f"wrote {path}", nl=True)
    out(
        f"next: fill in the targets in {directory / INVENTORY_FILE}, then run "
        "`engram-audit validate` in that directory",
        nl=True,
    )
    return ExitCode.CLEAN


@click.command("checks")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
)
def checks_command(fmt: str) -> int:
    """List the check catalogue (markdown: the README's catalogue section)."""
    if fmt == "markdown":
        out(catalogue_markdown())
        return ExitCode.CLEAN
    if fmt == "json":
        rows = [
            {"id": c.id, "sources": sorted(s.value for s in c.sources), "summary": c.summary}
            for c in CATALOGUE
        ]
        out(json.dumps(rows, indent=2), nl=True)
        return ExitCode.CLEAN
    width = max(len(c.id) for c in CATALOGUE)
    for entry in CATALOGUE:
        out(f"{entry.id:<{width}}  {entry.summary}", nl=True)
    return ExitCode.CLEAN


def catalogue_markdown() -> str:
    lines = ["| Check id | Source | What it verifies |", "|---|---|---|"]
    for entry in CATALOGUE:
        sources = " + ".join(sorted(s.value for s in entry.sources))
        summary = entry.summary.replace("|", "\\|")
        lines.append(f"| `{entry.id}` | {sources} | {summary} |")
    return "\n".join(lines) + "\n"


def explain_text(check_id: str) -> str:
    entry = get_check(check_id)
    if entry is None:
        known = ", ".join(c.id for c in CATALOGUE)
        raise UsageError(f"unknown check id {check_id!r}; known ids: {known}")
    schema = entry.params_model.model_json_schema()
    params = []
    for name, spec in schema.get("properties", {}).items():
        default = f" (default: {json.dumps(spec['default'])})" if "default" in spec else ""
        required = " (required)" if name in schema.get("required", []) else ""
        description = f" — {spec['description']}" if "description" in spec else ""
        params.append(f"  {name}{required}{default}{description}")
    lines = [
        entry.id,
        "",
        entry.summary,
        "",
        entry.description,
        "",
        "Sources: " + ", ".join(sorted(s.value for s in entry.sources)),
        "Params:",
        *(params or ["  (none)"]),
        "",
        "Remediation: " + entry.remediation,
    ]
    return "\n".join(lines) + "\n"


@click.command("explain")
@click.argument("check_id")
def explain_command(check_id: str) -> int:
    """Show one check: what it verifies, why, its params and how to fix a failure."""
    out(explain_text(check_id))
    return ExitCode.CLEAN


@click.command("schema")
@click.argument("kind", type=click.Choice(["policy", "snapshot", "waivers"]))
def schema_command(kind: str) -> int:
    """Print the JSON Schema of policy, snapshot or waivers files."""
    if kind == "waivers":
        out(render(shipped(WAIVERS_SCHEMA)))
    else:
        name = POLICY_SCHEMA if kind == "policy" else SNAPSHOT_SCHEMA
        out(render(GENERATORS[name]()))
    return ExitCode.CLEAN
