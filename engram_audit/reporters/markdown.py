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

    ### Controls by framework

    <details><summary>azure-policy: 12 controls, 2 failing or not evaluated</summary> ...

    <details><summary>Failure details (5)</summary> ... </details>
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import TypeVar

from engram_audit.model import STATUS_ORDER, Finding, Report, SourceLocation, Status
from engram_audit.model.report import RunContext
from engram_audit.reporters import console, matrix
from engram_audit.reporters.links import policy_line_url
from engram_audit.reporters.summary import errors_by_cause, gate_line, summary_line

MAX_ROWS = 200
# GitHub refuses a comment over 65,536 characters (a step summary may have 1 MiB).
MAX_CHARS = 65_536

T = TypeVar("T")

_MARKUP = re.compile(r"([\\`*_\[\]|~#])")
_AUTOLINK = re.compile(r"(?i)\bwww\.|:(?=//)")
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
    if report.collection_notes:
        lines += ["### Collection notes", ""]
        lines += _bullets(
            report.collection_notes,
            lambda n: (
                f"{esc(n.source.value)} {esc(n.resource)}"
                + (f" ({esc(n.part)})" if n.part else "")
                + f": {esc(n.note)}"
            ),
        )
        lines.append("")

    lines += _controls_by_framework(findings)
    # Collapsed sections, most important first; the least important are dropped whole when
    # the summary would exceed what GitHub takes in a comment (MAX_CHARS).
    optional = [
        _collapsed(
            "Failure and error details",
            [*failures, *by_status[Status.ERROR]],
            lambda finding: _detail(finding, report.context),
        ),
        _collapsed(
            "Waived",
            by_status[Status.WAIVED],
            lambda f: f"- {code(f.rule)} on {code(where(f))}: {esc(f.waiver or 'waived')}",
        ),
        _collapsed(
            "Skipped",
            by_status[Status.SKIP],
            lambda f: f"- {code(f.rule)} on {code(where(f))}: {esc(f.message or 'not applicable')}",
        ),
        _collapsed(
            "Passed",
            by_status[Status.PASS],
            lambda f: f"- {code(f.rule)} on {code(where(f))}: {esc(f.actual)}",
        ),
    ]
    budget = MAX_CHARS - len("\n".join(lines)) - 200
    dropped = 0
    for section in optional:
        size = len("\n".join(section)) + 1
        if size <= budget:
            lines += section
            budget -= size
        elif section:
            dropped += 1
    if dropped:
        lines += [
            f"_{dropped} collapsed section(s) left out to stay within GitHub's comment "
            "size: the JSON, SARIF and HTML reports have every finding._",
            "",
        ]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def esc(text: str) -> str:
    """Plain text safe inside Markdown and a table cell: no HTML, no markup, one line, and no
    link GitHub would make of a bare ``www.`` or ``scheme://`` (audited text must not become a
    clickable link in a pull request)."""
    escaped = _MARKUP.sub(r"\\\1", html.escape(_CONTROL.sub("", text), quote=False))
    escaped = _AUTOLINK.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], escaped)
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def short_resource(resource: str) -> str:
    """The console's short form: ``resource-group/server``, ``database/schema.table``."""
    return console.short_resource(resource)


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
    # Narrow enough for GitHub's 1012 px column: long expected/actual text is cut here and
    # shown whole in the collapsed details.
    header = ["Severity", "Rule", "Resource", "Expected → Actual"]
    if with_baseline:
        header.append("Baseline")
    rows = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for finding in failures[:MAX_ROWS]:
        cells = [
            finding.severity.value,
            code(finding.rule, in_table=True),
            code(where(finding), in_table=True),
            f"{esc(_cut(finding.expected))} → {esc(_cut(finding.actual))}",
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


def _detail(finding: Finding, context: RunContext | None = None) -> str:
    parts = [
        f"- {code(finding.rule)} ({finding.severity.value}, {finding.status.value}): "
        + esc(finding.title),
        f"  - Resource: {code(_named(finding))}",
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
    if finding.remediation and finding.status is Status.FAIL:
        parts.append(f"  - Fix: {code(finding.remediation)}")
    if finding.location is not None:
        parts.append(f"  - Declared in {_policy_link(finding.location, context)}")
    return "\n".join(parts)


_CUT = 60


def _cut(text: str) -> str:
    return text if len(text) <= _CUT else text[: _CUT - 1] + "…"


def code(text: str, *, in_table: bool = False) -> str:
    """A GFM code span holding ``text`` verbatim: a fence longer than any backtick run inside,
    one line, and ``|`` escaped in a table cell (GFM's table rule applies before code spans)."""
    flat = " ".join(_CONTROL.sub("", text).split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    span = f"{fence}{pad}{flat}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def _policy_link(location: SourceLocation, context: RunContext | None) -> str:
    """``policies/prod.yaml line 43``, linked to that line of the audited commit when the run's
    context says where the repository is (GitHub, Azure Repos: ``reporters.links``)."""
    text = f"{esc(location.path)} line {location.line}"
    url = policy_line_url(location, context)
    return f"[{text}]({url})" if url else text


def _controls_by_framework(findings: Sequence[Finding]) -> list[str]:
    """Findings grouped by the framework controls their rules implement: for each framework a
    collapsed table of control, rules and statuses (the worst first), so a reviewer reads the
    report in the framework they brought."""
    by_control: dict[tuple[str, str], tuple[str, list[Finding]]] = {}
    for finding in findings:
        for control in finding.controls:
            entry = by_control.setdefault((control.framework, control.id), (control.name, []))
            entry[1].append(finding)
    if not by_control:
        return []
    lines = ["### Controls by framework", ""]
    for framework in sorted({framework for framework, _ in by_control}):
        rows = sorted((key, value) for key, value in by_control.items() if key[0] == framework)
        worst = [_worst(found) for _, (_, found) in rows]
        failing = sum(status in (Status.FAIL, Status.ERROR) for status in worst)
        plural = "s" if len(rows) != 1 else ""
        summary = (
            f"{esc(framework)}: {len(rows)} control{plural}, {failing} failing or not evaluated"
        )
        table = ["| Control | Rules | Findings |", "| --- | --- | --- |"]
        for ((_, control_id), (name, found)), _status in zip(rows, worst, strict=True):
            label = esc(control_id) + (f" {esc(name)}" if name else "")
            rules = ", ".join(esc(rule) for rule in sorted({f.rule for f in found}))
            table.append(f"| {label} | {rules} | {_status_counts(found)} |")
        lines += [f"<details><summary>{summary}</summary>", "", *table, "", "</details>", ""]
    return lines


def _worst(findings: Sequence[Finding]) -> Status:
    return min((f.status for f in findings), key=STATUS_ORDER.index)


def _status_counts(findings: Sequence[Finding]) -> str:
    counts = {status: sum(f.status is status for f in findings) for status in STATUS_ORDER}
    return ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)


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
