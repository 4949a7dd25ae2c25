"""Commands about policies and the check catalogue: validate, init, checks, explain,
environments, schema."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from engram_audit.checks import CATALOGUE, Check, get_check
from engram_audit.cli.completion import complete_ids
from engram_audit.cli.terminal import fail, out
from engram_audit.errors import InputError, UsageError
from engram_audit.gate.exit_codes import ExitCode
from engram_audit.model import Rule
from engram_audit.model.inventory import INVENTORY_FILE
from engram_audit.policy.builtin import BUILTIN_DISPLAY, builtin_policy_dir, default_policy_dir
from engram_audit.policy.environments import environments, rule_by_environment, rule_ids
from engram_audit.policy.inventory import find_inventory, load_inventory
from engram_audit.policy.loader import display_path, validate_paths, with_dependents
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
    presets/ too) and the inventory: every problem at once, with file:line:column.

    A file is checked together with the policy files of its directory that extend it, directly
    or through others, so a change to a base that breaks an environment fails here.
    """
    targets = list(paths) or [default_policy_dir()]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(map(str, missing))}")
    checked, problems = validate_paths(with_dependents(with_presets(targets)))
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


def _type_of(spec: dict[str, Any], definitions: dict[str, Any]) -> str:
    """A JSON Schema type as a reader says it: "list of string", "integer or null"."""
    if "$ref" in spec:
        return _type_of(definitions.get(str(spec["$ref"]).rsplit("/", 1)[-1], {}), definitions)
    for combinator in ("anyOf", "oneOf"):
        if combinator in spec:
            return " or ".join(_type_of(part, definitions) for part in spec[combinator])
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    kind = spec.get("type")
    if kind == "array":
        return f"list of {_type_of(spec.get('items', {}), definitions)}"
    if kind == "object":
        values = spec.get("additionalProperties")
        if isinstance(values, dict):
            return f"mapping of {_type_of(values, definitions)}"
        return str(spec.get("title", "mapping")) if "properties" in spec else "mapping"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind or "any")


def _param_specs(entry: Check[Any]) -> list[tuple[str, str]]:
    """(name, "name: type (required | default: value) — description") for each param."""
    schema = entry.params_model.model_json_schema()
    definitions = schema.get("$defs", {})
    fields = entry.params_model.model_fields
    specs = []
    for name, spec in schema.get("properties", {}).items():
        field = fields.get(name)
        if name in schema.get("required", []) or field is None:
            how = "required"
        else:  # default factories too, which the JSON Schema leaves out
            default = field.get_default(call_default_factory=True, validated_data={})
            shown = default.model_dump(mode="json") if isinstance(default, BaseModel) else default
            how = f"default: {json.dumps(shown, sort_keys=True, default=str)}"
        description = f" — {spec['description']}" if "description" in spec else ""
        specs.append((name, f"{name}: {_type_of(spec, definitions)} ({how}){description}"))
    return specs


def explain_text(check_id: str) -> str:
    entry = get_check(check_id)
    if entry is None:
        known = ", ".join(c.id for c in CATALOGUE)
        raise UsageError(f"unknown check id {check_id!r}; known ids: {known}")
    params = [f"  {line}" for _, line in _param_specs(entry)]
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


def _grouped(values: dict[str, str]) -> list[tuple[str, str]]:
    """Environments that share a value, as ("dev, staging", value), in environment order."""
    groups: dict[str, list[str]] = {}
    for environment, value in values.items():
        groups.setdefault(value, []).append(environment)
    everywhere = len(groups) == 1 and len(values) > 1
    return [("all" if everywhere else ", ".join(envs), value) for value, envs in groups.items()]


def _shown_dir(policy_dir: Path) -> str:
    return BUILTIN_DISPLAY if policy_dir == builtin_policy_dir() else f"{display_path(policy_dir)}/"


def rule_text(rule_id: str, policy_dir: Path) -> str | None:
    """``explain`` of a rule id as findings show it: None when no policy declares it."""
    by_environment = rule_by_environment(rule_id, policy_dir)
    if not by_environment:
        return None
    checks = {rule.check for rule in by_environment.values()}
    shown_dir = _shown_dir(policy_dir)
    missing = [e for e in environments(policy_dir) if e not in by_environment]
    lines = [
        f"{rule_id}",
        "",
        f"Rule of the policies in {shown_dir}, environment(s) {', '.join(by_environment)}"
        + (f" (not in {', '.join(missing)})" if missing else ""),
    ]
    for check_id in sorted(checks):
        entry = get_check(check_id)
        summary = f" — {entry.summary}" if entry else ""
        lines.append(f"Check: {check_id}{summary} (engram-audit explain {check_id})")
    lines.append("")

    def header(rule: Rule) -> str:
        where = f"{rule.location.path}:{rule.location.line}" if rule.location else "?"
        state = "enabled" if rule.enabled else "disabled"
        text = [f"{rule.severity.value} · {state} · declared at {where}", f"  {rule.title}"]
        if rule.rationale:
            text.append(f"  Why: {rule.rationale}")
        if rule.remediation:
            text.append(f"  Fix: {rule.remediation}")
        return "\n".join(text)

    for environments_shown, text in _grouped(
        {env: header(rule) for env, rule in by_environment.items()}
    ):
        lines.append(f"{environments_shown}: {text}")
    for check_id in sorted(checks):
        entry = get_check(check_id)
        if entry is None:
            continue
        rules = {env: rule for env, rule in by_environment.items() if rule.check == check_id}
        effective: dict[str, dict[str, Any]] = {}
        for env, rule in rules.items():
            try:
                effective[env] = entry.parse_params(rule.params).model_dump(mode="json")
            except ValueError:
                effective[env] = dict(rule.params)
        lines += ["", f"Params of {check_id} (type, default; the value in each environment):"]
        specs = _param_specs(entry)
        if not specs:
            lines.append("  (none)")
        for name, spec in specs:
            lines.append(f"  {spec}")
            values = {
                env: json.dumps(effective[env].get(name), sort_keys=True)
                + ("" if name in rule.params else " (default)")
                for env, rule in rules.items()
            }
            lines += [f"    {envs}: {value}" for envs, value in _grouped(values)]
    return "\n".join(lines) + "\n"


@click.command("explain")
@click.argument("item_id", metavar="ID", shell_complete=complete_ids)
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="ENGRAM_AUDIT_POLICY_DIR",
    help="Where rule ids are looked up [default: ./policies if present, else the built-in set].",
)
def explain_command(item_id: str, policy_dir: Path | None) -> int:
    """Show a check (pg.vector.index) or a rule as findings name it (ZEP-PG-VECTOR-INDEX):
    what it verifies, why, where it applies, its params and how to fix a failure."""
    if get_check(item_id) is not None:
        out(explain_text(item_id))
        return ExitCode.CLEAN
    directory = policy_dir or default_policy_dir()
    text = rule_text(item_id, directory)
    if text is None:
        known_rules = rule_ids(directory)
        close = difflib.get_close_matches(
            item_id, [*known_rules, *(c.id for c in CATALOGUE)], n=3, cutoff=0.6
        )
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"unknown check id or rule id {item_id!r}{hint} "
            f"(check ids: `engram-audit checks`; rule ids: the policies in {_shown_dir(directory)})"
        )
    out(text)
    return ExitCode.CLEAN


@click.command("environments")
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="ENGRAM_AUDIT_POLICY_DIR",
    help="Policy directory [default: ./policies if present, else the built-in set].",
)
def environments_command(policy_dir: Path | None) -> int:
    """List the environments of the policy directory, one a line: each <env>.yaml that declares
    `environment: <env>`, i.e. what `check --env` accepts."""
    for name in environments(policy_dir or default_policy_dir()):
        out(name, nl=True)
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
