"""Markdown summary for ``$GITHUB_STEP_SUMMARY``, pull-request comments and Azure DevOps.

Totals first, then failures by severity with expected and actual, errors apart (they mean
"unknown", not "failed"), collection issues, and everything else collapsed in
``<details>``. Tables stop at ``MAX_ROWS`` rows so the summary stays within GitHub's
step-summary and comment size limits; the JSON and SARIF reports carry every finding.
Policy-authored and collected text is escaped so it cannot inject HTML or break a table.

Sample::

    ## engram-audit: prod: FAIL

    10 findings: 5 failed (2 high, 3 medium) · 1 errors · 1 waived · 1 skipped · 2 passed

    Snapshot 2031-01-15 ...

    ### Failures by severity

    | Severity | Rule | Resource | Expected | Actual | Baseline |
    | --- | --- | --- | --- | --- | --- |
    | high | prod.backup.geo | …/flexibleServers/pg-prod | Enabled | Disabled | unchanged |

    ### Errors: not evaluated
    - parameters not collected: 403 ... (prod.tls.min\\_version on …/flexibleServers/pg-prod)

    <details><summary>Failure details (5)</summary> ... </details>
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TypeVar

from engram_audit.model import Finding, Report, Status
from engram_audit.reporters import matrix
from engram_audit.reporters.summary import errors_by_cause, gate_line, summary_line

MAX_ROWS = 200

T = TypeVar("T")

_MARKUP = re.compile(r"([\\`*_\[\]|~#])")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def render(report: Report) -> str:
    findings = sorted(report.findings, key=lambda finding: finding.sort_key)
    by_status = {status: [f for f in findings if f.status is status] for status in Status}
    failures = sorted(by_status[Status.FAIL], key=lambda f: (-f.severity.rank, f.sort_key))
    with_baseline = any(f.baseline_state for f in findings)

    lines = [f"## {esc(report.tool.name)}: {esc(report.environment)}: {_verdict(report)}", ""]
    lines += [esc(summary_line(report)), ""]
    gate = gate_line(report)
    if gate:
        lines += [esc(gate), ""]
    lines += [_context(report), ""]

    if failures:
        lines += ["### Failures by severity", ""]
        lines += _failure_table(failures, with_baseline)
        lines.append("")
    if by_status[Status.ERROR]:
        lines += ["### Errors: not evaluated", ""]
        lines += _bullets(errors_by_cause(by_status[Status.ERROR]), _cause_line)
        lines.append("")
    if report.collection_issues:
        lines += ["### Collection issues", ""]
        lines += _bullets(
            report.collection_issues,
            lambda i: (
                f"{esc(i.source.value)} {esc(i.resource)}"
                + (f" ({esc(i.part)})" if i.part else "")
                + f": {esc(i.reason)}"
            ),
        )
        lines.append("")

    lines += _collapsed(
        "Failure and error details",
        [*failures, *by_status[Status.ERROR]],
        _detail,
    )
    lines += _collapsed(
        "Waived",
        by_status[Status.WAIVED],
        lambda f: f"- {esc(f.rule)} on {esc(f.resource)}: {esc(f.waiver or 'waived')}",
    )
    lines += _collapsed(
        "Skipped",
        by_status[Status.SKIP],
        lambda f: f"- {esc(f.rule)} on {esc(_named(f))}: {esc(f.message or 'not applicable')}",
    )
    lines += _collapsed(
        "Passed",
        by_status[Status.PASS],
        lambda f: f"- {esc(f.rule)} on {esc(_named(f))}: {esc(f.actual)}",
    )
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def esc(text: str) -> str:
    """Plain text safe inside Markdown and a table cell: no HTML, no markup, one line."""
    escaped = _MARKUP.sub(r"\\\1", html.escape(_CONTROL.sub("", text), quote=False))
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def short_resource(resource: str) -> str:
    """``…/flexibleServers/pg`` for an ARM id; database objects and ``env:`` stay whole."""
    if not resource.startswith("/"):
        return resource
    parts = resource.rstrip("/").split("/")
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else resource


def where(finding: Finding) -> str:
    """A finding's resource as a reader looks for it: the plan's or template's address on
    planned state, else the short resource id."""
    if finding.iac is not None:
        return finding.iac.address
    return short_resource(finding.resource)


def _named(finding: Finding) -> str:
    """The resource id, preceded by the plan's or template's address when there is one."""
    if finding.iac is None:
        return finding.resource
    return f"{finding.iac.address} ({finding.resource})"


def _verdict(report: Report) -> str:
    # Mirrors the exit code: incomplete wins over failed, and only failures at or above the
    # run's --fail-on fail it (an info finding is reported, not a red build).
    counts = report.summary.by_status
    if counts.get(Status.ERROR, 0) or report.collection_issues:
        return "INCOMPLETE"
    if any(report.gating(finding) for finding in report.findings):
        return "FAIL"
    if report.summary.total == 0:
        # "0 of 0 passed" must not look green.
        return "NOTHING CHECKED"
    return "PASS"


def _context(report: Report) -> str:
    when = report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sources = ", ".join(source.value for source in report.sources) or "none"
    policies = ", ".join(report.policy_files) or "none"
    return f"Snapshot {when}; sources: {esc(sources)}; policy: {esc(policies)}."


def _cause_line(group: tuple[str, list[Finding]]) -> str:
    cause, findings = group
    rules = sorted({f.rule for f in findings})
    resources = sorted({where(f) for f in findings})
    shown = ", ".join(esc(r) for r in resources[:5])
    more = f" and {len(resources) - 5} more" if len(resources) > 5 else ""
    return f"{esc(cause)} (rules {', '.join(esc(r) for r in rules)}; on {shown}{more})"


def _failure_table(failures: Sequence[Finding], with_baseline: bool) -> list[str]:
    header = ["Severity", "Rule", "Resource", "Expected", "Actual"]
    if with_baseline:
        header.append("Baseline")
    rows = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for finding in failures[:MAX_ROWS]:
        cells = [
            finding.severity.value,
            esc(finding.rule),
            esc(where(finding)),
            esc(finding.expected),
            esc(finding.actual),
        ]
        if with_baseline:
            cells.append(esc(finding.baseline_state or ""))
        rows.append("| " + " | ".join(cells) + " |")
    rows += _more(len(failures))
    return rows


def _bullets(items: Sequence[T], line: Callable[[T], str]) -> list[str]:
    return [f"- {line(item)}" for item in items[:MAX_ROWS]] + _more(len(items))


def _collapsed(title: str, items: Sequence[T], line: Callable[[T], str]) -> list[str]:
    if not items:
        return []
    body = [line(item) for item in items[:MAX_ROWS]] + _more(len(items))
    return [f"<details><summary>{title} ({len(items)})</summary>", "", *body, "", "</details>", ""]


def _detail(finding: Finding) -> str:
    parts = [
        f"- **{esc(finding.rule)}** ({finding.severity.value}, {finding.status.value}): "
        + esc(finding.title),
        f"  - Resource: {esc(finding.resource)}",
        f"  - Expected: {esc(finding.expected)}; actual: {esc(finding.actual)}",
    ]
    if finding.iac is not None:
        declared = (
            f" ({esc(finding.iac.path)} line {finding.iac.line})"
            if finding.iac.path is not None and finding.iac.line is not None
            else ""
        )
        parts.insert(2, f"  - Address: {esc(finding.iac.address)}{declared}")
    if finding.message:
        parts.append(f"  - {esc(finding.message)}")
    if finding.waiver:
        parts.append(f"  - Waiver: {esc(finding.waiver)}")
    if finding.remediation:
        parts.append(f"  - Remediation: {esc(finding.remediation)}")
    if finding.location is not None:
        parts.append(f"  - Declared in {esc(finding.location.path)} line {finding.location.line}")
    return "\n".join(parts)


def _more(count: int) -> list[str]:
    if count <= MAX_ROWS:
        return []
    return ["", f"… and {count - MAX_ROWS} more: see the JSON or SARIF report."]


def render_many(reports: Sequence[Report]) -> str:
    """The estate matrix first (a reviewer's overview), then each environment's summary."""
    grid = matrix.rows(reports)
    lines = ["## engram-audit: estate", "", "| " + " | ".join(esc(c) for c in grid[0]) + " |"]
    lines.append("| " + " | ".join("---" for _ in grid[0]) + " |")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in grid[1:]]
    sections = [render(report) for report in reports]
    return "\n".join(lines) + "\n\n" + "\n".join(sections)
