"""Baselines: compare a run with an earlier JSON report so a gate can act on what is new.

Each finding that needs attention (fail, error, waived) is marked ``new`` or ``unchanged``:
unchanged when the baseline holds the same (rule, resource) with the same status. A failure
whose waiver expired since the baseline (waived -> fail) is therefore new, and so is a check
that could be evaluated before and no longer can (fail -> error). Findings that failed in the
baseline and no longer do are returned as ``fixed``. ``--fail-on-new`` gates on new failures
only (``gate.exit_code(..., only_new=True)``); SARIF carries the state as ``baselineState``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import MAX_JSON_BYTES, read_input
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
    shown = display or str(path)
    text = read_input(path, shown, max_bytes=MAX_JSON_BYTES)
    try:
        return Report.model_validate_json(text)
    except ValidationError as error:
        raise InputError([_problem(shown, text, error)]) from None


def _problem(shown: str, text: str, error: ValidationError) -> Problem:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return Problem(shown, 1, 1, "", f"not valid JSON: {first['msg']}")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "findings" not in document:
        return Problem(
            shown, 1, 1, "", "not an engram-audit JSON report (write one with -o json:PATH)"
        )
    key = ".".join(str(part) for part in first["loc"])
    return Problem(
        shown,
        1,
        1,
        key,
        f"not a valid engram-audit JSON report: {first['msg']} ({error.error_count()} problem(s))",
    )


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
