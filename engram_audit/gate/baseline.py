"""Baselines: compare a run with an earlier JSON report so a gate can act on what is new.

Each finding that needs attention (fail, error, waived) is marked ``new`` or ``unchanged``:
unchanged when the baseline holds the same (rule, resource) with the same status. A failure
whose waiver expired since the baseline (waived -> fail) is therefore new, and so is a check
that could be evaluated before and no longer can (fail -> error). Findings that failed in the
baseline and no longer do are returned as ``fixed``. ``--fail-on-new`` gates on new failures
only (``gate.exit_code(..., only_new=True)``); SARIF carries the state as ``baselineState``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.json_source import load_json_document, validation_problems
from engram_audit.inputs.yaml_source import SourceDocument
from engram_audit.model import Finding, Report, Status

ATTENTION = (Status.FAIL, Status.ERROR, Status.WAIVED)
PROBLEMS = (Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class BaselineOutcome:
    report: Report
    new: tuple[Finding, ...]
    unchanged: tuple[Finding, ...]
    fixed: tuple[Finding, ...]

    def notes(self) -> list[str]:
        line = (
            f"baseline: {len(self.new)} new, {len(self.unchanged)} unchanged, "
            f"{len(self.fixed)} fixed since the baseline"
        )
        return [line] + [f"fixed since baseline: {f.rule} on {f.resource}" for f in self.fixed]


def load_report(path: Path, display: str | None = None) -> Report:
    """An engram-audit JSON report (``-o json:PATH``); anything else is an input error."""
    return report_from_document(load_json_document(path, display))


def report_from_document(document: SourceDocument) -> Report:
    data = document.data
    if not isinstance(data, dict) or "findings" not in data:
        raise InputError(
            [document.problem((), "not an engram-audit JSON report (write one with -o json:PATH)")]
        )
    try:
        return Report.model_validate(data)
    except ValidationError as error:
        details = [(tuple(detail["loc"]), detail["msg"]) for detail in error.errors()]
        raise InputError(
            validation_problems(document, details, "not a valid engram-audit JSON report")
        ) from None


def mark_baseline(report: Report, baseline: Report) -> BaselineOutcome:
    """Mark findings new/unchanged against ``baseline``; the environments must match."""
    if baseline.environment != report.environment:
        raise InputError(
            [
                Problem(
                    "--baseline",
                    1,
                    1,
                    "environment",
                    f"the baseline is a report for environment {baseline.environment!r}, "
                    f"this run is {report.environment!r}",
                )
            ]
        )
    before = {finding.identity: finding.status for finding in baseline.findings}
    marked: list[Finding] = []
    for finding in report.findings:
        if finding.status not in ATTENTION:
            marked.append(finding.model_copy(update={"baseline_state": None}))
            continue
        state = "unchanged" if before.get(finding.identity) is finding.status else "new"
        marked.append(finding.model_copy(update={"baseline_state": state}))

    now_problems = {f.identity for f in report.findings if f.status in PROBLEMS}
    fixed = tuple(
        f for f in baseline.findings if f.status in PROBLEMS and f.identity not in now_problems
    )
    updated = tuple(marked)
    return BaselineOutcome(
        report=report.model_copy(update={"findings": updated}),
        new=tuple(f for f in updated if f.baseline_state == "new"),
        unchanged=tuple(f for f in updated if f.baseline_state == "unchanged"),
        fixed=fixed,
    )
