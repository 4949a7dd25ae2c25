"""The numbers every format states about one run, computed once so no two formats disagree.

``summary_line`` is the line scripts read from the console and Markdown reports::

    40 findings: 3 failed (1 critical, 2 high) · 1 errors · 0 waived · 2 skipped · 34 passed

``gate_split`` separates failures that fail the gate (at or above ``--fail-on``) from those
reported below it; console, Markdown, JSON (``gate``), JUnit (suite properties) and SARIF
(run properties) each state the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engram_audit.model import SEVERITIES_ASCENDING, Finding, Report, Status


@dataclass(frozen=True)
class GateSplit:
    fail_on: str
    gating: int
    below_gate: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "fail_on": self.fail_on,
            "gating_failures": self.gating,
            "below_gate_failures": self.below_gate,
        }


def gate_split(report: Report) -> GateSplit:
    failures = [f for f in report.findings if f.status is Status.FAIL]
    gating = sum(report.gating(f) for f in failures)
    return GateSplit(report.fail_on.value, gating, len(failures) - gating)


def summary_line(report: Report) -> str:
    counts = report.summary.by_status
    failed_by_severity = [
        f"{report.summary.by_severity[severity][Status.FAIL]} {severity.value}"
        for severity in reversed(SEVERITIES_ASCENDING)
        if report.summary.by_severity[severity][Status.FAIL]
    ]
    failed = f"{counts[Status.FAIL]} failed" + (
        f" ({', '.join(failed_by_severity)})" if failed_by_severity else ""
    )
    return (
        f"{report.summary.total} findings: {failed} · {counts[Status.ERROR]} errors · "
        f"{counts[Status.WAIVED]} waived · {counts[Status.SKIP]} skipped · {counts[Status.PASS]} passed"
    )


def gate_line(report: Report) -> str | None:
    """Said only when some failures sit below ``--fail-on``: then the two numbers differ."""
    split = gate_split(report)
    if not split.below_gate:
        return None
    return (
        f"gate: --fail-on {split.fail_on}: {split.gating} failure(s) fail the gate, "
        f"{split.below_gate} below it are reported only"
    )


def errors_by_cause(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """ERROR findings grouped by their message: one cause (a 401, a missing grant) once."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.message or "unknown reason", []).append(finding)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
