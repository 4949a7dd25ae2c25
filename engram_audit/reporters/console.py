"""Human-readable report for a terminal or a CI log: grouped by status, then severity.

Colour is an argument, not a detection: the CLI passes ``color=True`` only when stdout is a
terminal, so logs and golden files stay plain. Sample::

    engram-audit 0.1.0 · environment prod · snapshot 2026-11-20T06:00:00Z · sources azure, dsn, postgres

    FAIL (2)
      CRITICAL ZEP-AZ-BACKUP-RETENTION  35-day backup retention in production
               resource  /subscriptions/.../flexibleServers/zep-prod-db
               expected  >= 35 days
               actual    7 days
               fix       az postgres flexible-server update ... --backup-retention 35
    ...
    37 findings: 2 failed (1 critical, 1 high) · 0 errors · 0 waived · 3 skipped · 32 passed
"""

from __future__ import annotations

from engram_audit.model import STATUS_ORDER, Finding, Report, Status
from engram_audit.reporters import matrix
from engram_audit.reporters.escaping import escape_value as v
from engram_audit.reporters.summary import errors_by_cause, gate_line, summary_line

_STYLE = {
    Status.FAIL: "\033[31;1m",
    Status.ERROR: "\033[35;1m",
    Status.WAIVED: "\033[36m",
    Status.SKIP: "\033[33m",
    Status.PASS: "\033[32m",
}
_RESET = "\033[0m"
_DETAILED = (Status.FAIL, Status.WAIVED)
_SHOWN_PER_CAUSE = 5


def _paint(text: str, status: Status, color: bool) -> str:
    return f"{_STYLE[status]}{text}{_RESET}" if color else text


def _detail_lines(finding: Finding) -> list[str]:
    pad = " " * 13
    lines = [f"  {finding.severity.value.upper():<10} {v(finding.rule)}  {v(finding.title)}"]
    lines.append(f"{pad}resource  {v(finding.resource)}")
    if finding.expected:
        lines.append(f"{pad}expected  {v(finding.expected)}")
    if finding.actual:
        lines.append(f"{pad}actual    {v(finding.actual)}")
    if finding.message:
        lines.append(f"{pad}why       {v(finding.message)}")
    if finding.waiver:
        lines.append(f"{pad}waiver    {v(finding.waiver)}")
    if finding.baseline_state:
        lines.append(f"{pad}baseline  {v(finding.baseline_state)}")
    if finding.status is Status.FAIL and finding.remediation:
        lines.append(f"{pad}fix       {v(finding.remediation)}")
    return lines


def _brief_line(finding: Finding) -> str:
    skip_reason = finding.status is Status.SKIP and finding.message
    reason = f"  ({v(finding.message)})" if skip_reason else ""
    return f"  {v(finding.rule)}  {v(finding.resource)}{reason}"


def render(report: Report, *, color: bool = False) -> str:
    header = (
        f"{report.tool.name} {report.tool.version} · environment {v(report.environment)} · "
        f"snapshot {report.generated_at.isoformat().replace('+00:00', 'Z')} · "
        f"sources {', '.join(s.value for s in report.sources)}"
    )
    lines = [header]
    for status in STATUS_ORDER:
        group = [f for f in report.findings if f.status is status]
        if not group:
            continue
        group.sort(key=lambda f: (-f.severity.rank, f.rule, f.resource))
        lines += ["", _paint(f"{status.value.upper()} ({len(group)})", status, color)]
        if status is Status.ERROR:
            lines += _error_lines(group)
            continue
        for finding in group:
            lines += _detail_lines(finding) if status in _DETAILED else [_brief_line(finding)]
    if report.collection_issues:
        lines += ["", f"COLLECTION ISSUES ({len(report.collection_issues)})"]
        lines += [
            f"  {i.source.value}  {v(i.resource)}{f' [{v(i.part)}]' if i.part else ''}: {v(i.reason)}"
            for i in report.collection_issues
        ]
    if report.collection_notes:
        lines += ["", f"COLLECTION NOTES ({len(report.collection_notes)})"]
        lines += [
            f"  {n.source.value}  {v(n.resource)}{f' [{v(n.part)}]' if n.part else ''}: {v(n.note)}"
            for n in report.collection_notes
        ]
    lines += ["", summary_line(report)]
    gate = gate_line(report)
    if gate:
        lines.append(gate)
    return "\n".join(lines) + "\n"


def _error_lines(errors: list[Finding]) -> list[str]:
    """One block per cause: a 401 from ARM is said once, with the rules it left unevaluated."""
    pad = " " * 13
    lines = []
    for cause, findings in errors_by_cause(errors):
        rules = sorted({f.rule for f in findings})
        resources = sorted({f.resource for f in findings})
        lines.append(f"  {v(cause)}")
        lines.append(f"{pad}rules     {', '.join(v(rule) for rule in rules)}")
        shown = ", ".join(v(r) for r in resources[:_SHOWN_PER_CAUSE])
        more = len(resources) - _SHOWN_PER_CAUSE
        lines.append(f"{pad}resource  {shown}" + (f" and {more} more" if more > 0 else ""))
    return lines


def render_many(reports: list[Report], *, color: bool = False) -> str:
    """Each environment's report, then the rules x environments matrix."""
    blocks = [render(report, color=color) for report in reports]
    grid = matrix.rows(reports)
    widths = [max(len(v(row[i])) for row in grid) for i in range(len(grid[0]))]
    lines = ["ESTATE: rules x environments"]
    lines += [
        "  " + "  ".join(v(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in grid
    ]
    return "\n".join(blocks) + "\n" + "\n".join(line.rstrip() for line in lines) + "\n"
