"""``engram-audit diff OLD NEW``: drift between two snapshots, or between two JSON reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from engram_audit.cli.terminal import out
from engram_audit.errors import InputError, UsageError
from engram_audit.gate.baseline import report_from_document
from engram_audit.gate.drift import (
    ABSENT,
    FindingChange,
    ReportDiff,
    SnapshotDiff,
    changes_as_dict,
    diff_reports,
    diff_snapshots,
)
from engram_audit.gate.exit_codes import ExitCode
from engram_audit.inputs.json_source import load_json_document
from engram_audit.inputs.yaml_source import SourceDocument
from engram_audit.model import Snapshot
from engram_audit.model.snapshot_io import snapshot_from_document
from engram_audit.reporters.escaping import escape_value as v

SNAPSHOT, REPORT = "snapshot", "report"


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for scripts.",
)
@click.option(
    "--include-volatile",
    is_flag=True,
    help="Also compare runtime statistics (row counts, connections, backups taken ...).",
)
def diff_command(old: Path, new: Path, output_format: str, include_volatile: bool) -> int:
    """Show drift between two snapshots (property, old value, new value, per resource)
    or two JSON reports (findings new, fixed, unchanged). A snapshot of a plan or template
    against a live one shows what the release changes.

    \b
    Exit codes: 0 no drift · 1 drift · 2 bad input
                3 snapshots only partly comparable (a part was not collected), no drift seen
    """
    (old_kind, old_document), (new_kind, new_document) = _read(old), _read(new)
    if old_kind != new_kind:
        raise UsageError(
            f"{old} is a {old_kind} and {new} is a {new_kind}: compare two snapshots "
            "or two JSON reports"
        )
    if old_kind == SNAPSHOT:
        snapshots = diff_snapshots(
            snapshot_from_document(old_document),
            snapshot_from_document(new_document),
            include_volatile=include_volatile,
        )
        out(_snapshot_json(snapshots) if output_format == "json" else _snapshot_text(snapshots))
        if snapshots.has_drift:
            return ExitCode.FAILED
        return ExitCode.INCOMPLETE if snapshots.not_compared else ExitCode.CLEAN
    reports = diff_reports(report_from_document(old_document), report_from_document(new_document))
    out(_report_json(reports) if output_format == "json" else _report_text(reports))
    return ExitCode.FAILED if reports.has_drift else ExitCode.CLEAN


def _read(path: Path) -> tuple[str, SourceDocument]:
    """The file, read once, and what it is: a snapshot or a JSON report."""
    document = load_json_document(path)
    data = document.data
    if isinstance(data, dict) and "findings" in data:
        return REPORT, document
    if isinstance(data, dict) and "collected_at" in data:
        return SNAPSHOT, document
    raise InputError([document.problem((), "neither an engram-audit snapshot nor a JSON report")])


def _value(value: Any) -> str:
    return (
        "(absent)" if value == ABSENT else v(json.dumps(value, ensure_ascii=False, sort_keys=True))
    )


def _state(snapshot: Snapshot) -> str:
    """``prod 2031-01-15T03:00:00+00:00``; planned state names its plan or template."""
    origin = snapshot.origin
    if origin is None:
        return f"{v(snapshot.environment)} {snapshot.collected_at.isoformat()}"
    files = ", ".join(f.path for f in origin.files if f.role != "parameters")
    return f"{v(snapshot.environment)} {origin.kind} {v(files)}"


def _origin(snapshot: Snapshot) -> dict[str, Any]:
    origin = snapshot.origin
    if origin is None:
        return {"state": "live"}
    return {
        "state": origin.kind,
        "files": [{"role": f.role, "path": f.path, "sha256": f.sha256} for f in origin.files],
    }


def _snapshot_text(diff: SnapshotDiff) -> str:
    span = f"{_state(diff.old)} -> {_state(diff.new)}"
    lines = [
        f"drift: {len(diff.resources)} resource(s) changed, {span}"
        if diff.has_drift
        else f"no drift: {span}"
    ]
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for resource in diff.resources:
        suffix = f" ({resource.kind})" if resource.kind != "changed" else ""
        lines.append(f"{marks[resource.kind]} {v(resource.resource)}{suffix}")
        lines += [
            f"    {v(change.path)}: {_value(change.old)} -> {_value(change.new)}"
            for change in resource.changes
        ]
    if diff.not_compared:
        lines.append("not compared (unknown, not counted as drift):")
        lines += [f"  {v(note)}" for note in diff.not_compared]
    return "\n".join(lines) + "\n"


def _snapshot_json(diff: SnapshotDiff) -> str:
    document = {
        "kind": SNAPSHOT,
        "drift": diff.has_drift,
        "old": {
            "environment": diff.old.environment,
            "collected_at": diff.old.collected_at.isoformat(),
            **_origin(diff.old),
        },
        "new": {
            "environment": diff.new.environment,
            "collected_at": diff.new.collected_at.isoformat(),
            **_origin(diff.new),
        },
        "resources": [
            {"resource": r.resource, "kind": r.kind, "changes": changes_as_dict(r.changes)}
            for r in diff.resources
        ],
        "not_compared": list(diff.not_compared),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _report_text(diff: ReportDiff) -> str:
    lines = [
        f"{'drift' if diff.has_drift else 'no drift'}: {len(diff.new_findings)} new, "
        f"{len(diff.fixed)} fixed, {len(diff.unchanged)} unchanged "
        f"({v(diff.old.environment)} {diff.old.generated_at.isoformat()} -> "
        f"{v(diff.new.environment)} {diff.new.generated_at.isoformat()})"
    ]
    for title, changes in (
        ("new", diff.new_findings),
        ("fixed", diff.fixed),
        ("unchanged", diff.unchanged),
    ):
        if changes:
            lines.append(f"{title}:")
            lines += [f"  {_finding_line(change)}" for change in changes]
    return "\n".join(lines) + "\n"


def _finding_line(change: FindingChange) -> str:
    status = f"{change.old_status or 'absent'} -> {change.new_status or 'absent'}"
    return f"{v(change.severity):<8} {v(change.rule)} on {v(change.resource)} ({v(status)})"


def _report_json(diff: ReportDiff) -> str:
    def rows(changes: tuple[FindingChange, ...]) -> list[dict[str, Any]]:
        return [
            {
                "rule": c.rule,
                "resource": c.resource,
                "severity": c.severity,
                "title": c.title,
                "old_status": c.old_status,
                "new_status": c.new_status,
            }
            for c in changes
        ]

    document = {
        "kind": REPORT,
        "drift": diff.has_drift,
        "old": {
            "environment": diff.old.environment,
            "generated_at": diff.old.generated_at.isoformat(),
        },
        "new": {
            "environment": diff.new.environment,
            "generated_at": diff.new.generated_at.isoformat(),
        },
        "new_findings": rows(diff.new_findings),
        "fixed": rows(diff.fixed),
        "unchanged": rows(diff.unchanged),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
