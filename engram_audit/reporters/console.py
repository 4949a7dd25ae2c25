"""Human-readable report for a terminal or a CI log, readable at fleet scale.

Failures that share a rule, an expected and an actual value are one block listing their
resources (the first few, then "and N more"; JSON, SARIF and JUnit list every one); errors are
one block per cause; passes and skips are one line per rule with a count. Resources are
shortened (``resource-group/server``, ``database/schema.table``); the other formats keep full
ids. Lines wrap at ``width`` with a hanging indent, a single long token standing alone.

Colour and width are arguments, not detections: the CLI decides them (a terminal, NO_COLOR,
--no-color, FORCE_COLOR, COLUMNS), so logs and golden files stay plain. Sample::

    engram-audit 0.1.0 · environment prod · snapshot 2026-11-20T06:00:00Z · sources azure, dsn, postgres

    FAIL (200)
      CRITICAL ZEP-AZ-BACKUP-RETENTION  35-day backup retention in production
               resources engram-rg/zep-prod-db-001, engram-rg/zep-prod-db-002 and 198 more
               expected  >= 35 days
               actual    7 days
               fix       az postgres flexible-server update ... --backup-retention 35

    PASS (3600)
      ZEP-AZ-HA  200 servers
    ...
    3837 findings: 200 failed (200 critical) · 0 errors · 0 waived · 37 skipped · 3600 passed
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

from engram_audit.model import STATUS_ORDER, Finding, Report, Severity, Status
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
_SEVERITY_STYLE = {
    Severity.CRITICAL: "\033[41;97;1m",
    Severity.HIGH: "\033[31;1m",
    Severity.MEDIUM: "\033[33;1m",
    Severity.LOW: "\033[36m",
    Severity.INFO: "\033[2m",
}
_RESET = "\033[0m"
# Listed in full by default; the others get one line per rule (--show chooses).
DEFAULT_SHOW = frozenset({Status.FAIL, Status.ERROR, Status.WAIVED})
SHOWN_RESOURCES = 5
_PAD = " " * 11
_LABEL_WIDTH = 10


def render(
    report: Report,
    *,
    color: bool = False,
    width: int | None = None,
    show: frozenset[Status] = DEFAULT_SHOW,
) -> str:
    # The header and summary lines are never wrapped: scripts read the summary line.
    lines = [_header(report), *_wrap(_body(report, color=color, show=show), width)]
    lines += ["", summary_line(report)]
    gate = gate_line(report)
    if gate:
        lines.append(gate)
    return "\n".join(lines) + "\n"


def render_summary(report: Report) -> str:
    """``--quiet``: the summary line alone (and the gate line when it says something else)."""
    gate = gate_line(report)
    return summary_line(report) + (f"\n{gate}" if gate else "") + "\n"


def render_many(
    reports: list[Report],
    *,
    color: bool = False,
    width: int | None = None,
    show: frozenset[Status] = DEFAULT_SHOW,
) -> str:
    """Each environment's report, then the rules x environments matrix."""
    blocks = [render(report, color=color, width=width, show=show) for report in reports]
    grid = matrix.rows(reports)
    widths = [max(len(v(row[i])) for row in grid) for i in range(len(grid[0]))]
    lines = ["ESTATE: rules x environments"]
    lines += [
        "  " + "  ".join(v(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in grid
    ]
    return "\n".join(blocks) + "\n" + "\n".join(line.rstrip() for line in lines) + "\n"


def short_resource(resource: str) -> str:
    """``resource-group/server[/child/name]`` for an ARM id, ``database/object`` (with the
    host for a whole database) for PostgreSQL; anything else as it is."""
    if resource.startswith("/"):
        parts = resource.strip("/").split("/")
        lowered = [part.casefold() for part in parts]
        if "resourcegroups" in lowered and "providers" in lowered:
            group = parts[lowered.index("resourcegroups") + 1]
            tail = parts[lowered.index("providers") + 3 :]
            return "/".join([group, *tail]) if tail else resource
        return resource
    if resource.startswith("postgresql://"):
        rest = resource[len("postgresql://") :]
        host, _, path = rest.partition("/")
        database, _, obj = path.partition("/")
        return f"{database}/{obj}" if obj else f"{database}@{host}"
    return resource


def _header(report: Report) -> str:
    when = report.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{report.tool.name} {report.tool.version} · environment {v(report.environment)} · "
        f"snapshot {when} · sources {', '.join(s.value for s in report.sources)}"
    )


def _body(report: Report, *, color: bool, show: frozenset[Status]) -> list[str]:
    lines: list[str] = []
    for status in STATUS_ORDER:
        group = [f for f in report.findings if f.status is status]
        if not group:
            continue
        lines += ["", _paint(f"{status.value.upper()} ({len(group)})", _STYLE[status], color)]
        if status is Status.ERROR and status in show:
            lines += _error_blocks(group)
        elif status in show:
            lines += _detail_blocks(group, color=color)
        else:
            lines += _rule_counts(group)
    if report.collection_issues:
        lines += ["", f"COLLECTION ISSUES ({len(report.collection_issues)})"]
        lines += [
            f"  {i.source.value}  {v(short_resource(i.resource))}"
            f"{f' [{v(i.part)}]' if i.part else ''}: {v(i.reason)}"
            for i in report.collection_issues
        ]
    if report.collection_notes:
        lines += ["", f"COLLECTION NOTES ({len(report.collection_notes)})"]
        lines += [
            f"  {n.source.value}  {v(short_resource(n.resource))}"
            f"{f' [{v(n.part)}]' if n.part else ''}: {v(n.note)}"
            for n in report.collection_notes
        ]
    return lines


def _detail_blocks(findings: list[Finding], *, color: bool) -> list[str]:
    """One block per (rule, expected, actual, message, waiver, baseline): shared facts once."""
    groups: dict[tuple[str, ...], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (-f.severity.rank, f.rule, f.resource)):
        key = (
            finding.rule,
            finding.expected,
            finding.actual,
            finding.message,
            finding.waiver or "",
            finding.baseline_state or "",
        )
        groups.setdefault(key, []).append(finding)
    lines: list[str] = []
    for members in groups.values():
        first = members[0]
        severity = _paint(
            f"{first.severity.value.upper():<8}", _SEVERITY_STYLE[first.severity], color
        )
        lines.append(f"  {severity} {v(first.rule)}  {v(first.title)}")
        label = "resource" if len(members) == 1 else "resources"
        lines.append(_field(label, _resource_list(f.resource for f in members)))
        for name, value in (
            ("expected", first.expected),
            ("actual", first.actual),
            ("why", first.message),
            ("waiver", first.waiver or ""),
            ("baseline", first.baseline_state or ""),
        ):
            if value:
                lines.append(_field(name, v(value)))
        if first.status is Status.FAIL and first.remediation:
            lines.append(_field("fix", v(first.remediation)))
    return lines


def _error_blocks(errors: list[Finding]) -> list[str]:
    """One block per cause: a 401 from ARM is said once, with the rules it left unevaluated."""
    lines = []
    for cause, findings in errors_by_cause(errors):
        lines.append(f"  {v(cause)}")
        lines.append(_field("rules", ", ".join(v(r) for r in sorted({f.rule for f in findings}))))
        lines.append(_field("resources", _resource_list(f.resource for f in findings)))
    return lines


def _rule_counts(findings: list[Finding]) -> list[str]:
    """``ZEP-AZ-HA  200 servers`` per rule; a skip says why (once per distinct reason)."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    lines = []
    for rule in sorted(by_rule):
        members = by_rule[rule]
        count = _count(members)
        reasons = sorted({f.message for f in members if f.status is Status.SKIP and f.message})
        why = f"  ({'; '.join(v(r) for r in reasons)})" if reasons else ""
        lines.append(f"  {v(rule)}  {count}{why}")
    return lines


def _count(findings: Sequence[Finding]) -> str:
    resources = {f.resource for f in findings}
    if resources == {"*"}:
        return "whole run"
    kinds = {_kind(resource) for resource in resources}
    noun = kinds.pop() if len(kinds) == 1 else "resources"
    return f"{len(resources)} {noun if len(resources) != 1 else noun[:-1]}"


def _kind(resource: str) -> str:
    lowered = resource.casefold()
    if lowered.startswith("/") and "/flexibleservers/" in lowered:
        tail = lowered.split("/flexibleservers/", 1)[1].strip("/")
        return "servers" if "/" not in tail else "resources"
    if lowered.startswith("postgresql://"):
        return "databases" if resource.count("/") == 3 else "objects"
    if lowered.startswith("env:"):
        return "variables"
    return "resources"


def _resource_list(resources: Iterable[str]) -> str:
    unique = sorted(dict.fromkeys(resources))
    shown = ", ".join(v(short_resource(r)) for r in unique[:SHOWN_RESOURCES])
    more = len(unique) - SHOWN_RESOURCES
    return shown + (f" and {more} more" if more > 0 else "")


def _field(label: str, value: str) -> str:
    return f"{_PAD}{label:<{_LABEL_WIDTH}}{value}"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def _wrap(lines: list[str], width: int | None) -> list[str]:
    """Wrap at ``width`` with a hanging indent under the value; never split a token."""
    if not width:
        return lines
    wrapped: list[str] = []
    for line in lines:
        if len(line) <= width or "\033[" in line:
            wrapped.append(line)
            continue
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        # Continuations line up under the value (fields) or under the rule id (headings).
        hang = indent + _LABEL_WIDTH if indent == len(_PAD) else len(_PAD)
        wrapped += textwrap.wrap(
            stripped,
            width=width,
            initial_indent=" " * indent,
            subsequent_indent=" " * hang,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [line]
    return wrapped
