"""Exit codes a CI gate can rely on, decided from a report alone."""

from __future__ import annotations

from enum import IntEnum

from engram_audit.model import Report, Severity, Status


class ExitCode(IntEnum):
    CLEAN = 0
    FAILED = 1
    INVALID_INPUT = 2
    INCOMPLETE = 3


def exit_code(
    report: Report, fail_on: Severity | None = None, *, only_new: bool = False
) -> ExitCode:
    """3 when anything could not be evaluated (wins), 1 on a failure at/above the gate, else 0.

    The gate is ``fail_on`` when given, else the threshold the report records (``--fail-on``).
    """
    gated = report if fail_on is None else report.model_copy(update={"fail_on": fail_on})
    if report.collection_issues or any(f.status is Status.ERROR for f in report.findings):
        return ExitCode.INCOMPLETE
    for finding in report.findings:
        if not gated.gating(finding):
            continue
        if only_new and finding.baseline_state == "unchanged":
            continue
        return ExitCode.FAILED
    return ExitCode.CLEAN
