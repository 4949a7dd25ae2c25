"""A self-contained HTML report for security reviews: one file, no network, printable.

Everything is inline: the stylesheet, a small script for the filters, and the chart as SVG. A
Content-Security-Policy in the page forbids every network fetch, so the file behaves the same
from ``file://``, a web server or an email attachment. Every piece of text from a policy or an
audited system is HTML-escaped; nothing is interpreted. Sections: scope (policies,
environments, sources, collection time, tool version, CI run when known), summary by severity
and status with a chart, the rules x environments heat map, then every finding with expected,
actual, evidence (what was collected, from which API or catalog), fix and waiver. Filters by
severity, status and environment work without a server; "Save as PDF" prints everything.

Sample (abridged)::

    <!DOCTYPE html><html lang="en"><head><meta http-equiv="Content-Security-Policy" ...>
    <title>engram-audit: prod</title><style>...</style></head><body>
    <h1>engram-audit report</h1><section id="scope">...</section>
    <section id="summary"><svg ...>...</svg></section><section id="matrix">...</section>
    <section id="findings"><article class="finding" data-status="fail" ...>...</article>
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from engram_audit.model import SEVERITIES_ASCENDING, STATUS_ORDER, Finding, Report, Severity, Status
from engram_audit.model.report import RunContext
from engram_audit.model.snapshot import PART_EVIDENCE
from engram_audit.reporters import matrix
from engram_audit.reporters.links import policy_line_url
from engram_audit.reporters.summary import gate_split, summary_line

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
_STATUS_COLOUR = {
    Status.FAIL: "#c62828",
    Status.ERROR: "#8e24aa",
    Status.WAIVED: "#0277bd",
    Status.SKIP: "#9e9d24",
    Status.PASS: "#2e7d32",
}

_STYLE = """
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85rem;
  overflow-wrap: anywhere; }
.summary-line { font-weight: 600; }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .3rem; color: #fff;
  font-size: .8rem; font-weight: 600; text-transform: uppercase; }
.cell-fail { background: #ffcdd2; } .cell-error { background: #e1bee7; }
.cell-waived { background: #b3e5fc; } .cell-skip { background: #f0f4c3; }
.cell-pass { background: #c8e6c9; } .cell-absent { background: #fafafa; color: #999; }
.filters { display: flex; flex-wrap: wrap; gap: 1.5rem; padding: .6rem; background: #f5f5f5;
  border-radius: .4rem; } .filters fieldset { border: 0; margin: 0; padding: 0; }
.filters legend { font-weight: 600; font-size: .85rem; }
.finding { border: 1px solid #ddd; border-left: .35rem solid #999; border-radius: .3rem;
  padding: .5rem .8rem; margin: .6rem 0; break-inside: avoid; }
.finding h3 { font-size: 1rem; margin: 0 0 .3rem 0; }
.finding dl { display: grid; grid-template-columns: 8rem 1fr; gap: .1rem .8rem; margin: 0; }
.finding dt { color: #555; } .finding dd { margin: 0; }
.finding[hidden] { display: none; }
#shown-count { font-size: .85rem; color: #555; }
@media print {
  .filters, #shown-count { display: none; }
  .finding[hidden] { display: block; }
  body { margin: 0; max-width: none; }
  a { color: inherit; text-decoration: none; }
}
"""

# The filters: each finding carries data-severity / data-status / data-environment; a finding
# is shown when every group has its value ticked. No network, no libraries.
_SCRIPT = """
(function () {
  var boxes = document.querySelectorAll('.filters input[type=checkbox]');
  var findings = document.querySelectorAll('.finding');
  var counter = document.getElementById('shown-count');
  function apply() {
    var wanted = {};
    boxes.forEach(function (box) {
      wanted[box.name] = wanted[box.name] || {};
      wanted[box.name][box.value] = box.checked;
    });
    var shown = 0;
    findings.forEach(function (finding) {
      var visible = ['severity', 'status', 'environment'].every(function (group) {
        return !wanted[group] || wanted[group][finding.dataset[group]];
      });
      finding.hidden = !visible;
      if (visible) { shown += 1; }
    });
    counter.textContent = shown + ' of ' + findings.length + ' findings shown';
  }
  boxes.forEach(function (box) { box.addEventListener('change', apply); });
  apply();
})();
"""


def render(report: Report) -> str:
    return render_many([report])


def render_many(reports: Sequence[Report]) -> str:
    environments = ", ".join(report.environment for report in reports)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>engram-audit: {_e(environments)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>engram-audit report</h1>",
        f'<p class="summary-line">{"<br>".join(_e(summary_line(r)) for r in reports)}</p>',
        _scope(reports),
        _summary(reports),
        _matrix(reports),
        _controls(reports),
        _findings(reports),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _scope(reports: Sequence[Report]) -> str:
    first = reports[0]
    rows = [
        ("Environments", ", ".join(r.environment for r in reports)),
        ("Policies", "; ".join(", ".join(r.policy_files) or "none" for r in reports)),
        ("Sources", ", ".join(sorted({s.value for r in reports for s in r.sources})) or "none"),
        (
            "Collected",
            "; ".join(
                f"{r.environment} {r.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"
                for r in reports
            ),
        ),
        ("Tool", f"{first.tool.name} {first.tool.version}"),
        (
            "Gate",
            "; ".join(
                f"{r.environment}: --fail-on {split.fail_on}, {split.gating} failing, "
                f"{split.below_gate} below"
                for r, split in ((r, gate_split(r)) for r in reports)
            ),
        ),
    ]
    context = first.context
    if context is not None:
        for label, value in (
            ("CI", context.ci),
            ("Repository", context.repository),
            ("Commit", context.commit),
            ("Ref", context.ref),
            ("Run", context.run_url),
            ("Started by", context.actor),
        ):
            if value:
                rows.append((label, value))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<section id="scope"><h2>Scope</h2><table>{body}</table></section>'


def _summary(reports: Sequence[Report]) -> str:
    """Counts by severity and status, as a table and as a stacked bar chart (inline SVG)."""
    severities = list(reversed(SEVERITIES_ASCENDING))
    counts = {
        (severity, status): sum(r.summary.by_severity[severity][status] for r in reports)
        for severity in severities
        for status in STATUS_ORDER
    }
    header = "".join(f"<th>{_e(s.value)}</th>" for s in STATUS_ORDER)
    rows = "".join(
        f"<tr><th>{_e(severity.value)}</th>"
        + "".join(f"<td>{counts[(severity, status)]}</td>" for status in STATUS_ORDER)
        + "</tr>"
        for severity in severities
    )
    table = f"<table><tr><th>severity</th>{header}</tr>{rows}</table>"
    return f'<section id="summary"><h2>Summary</h2>{_chart(severities, counts)}{table}</section>'


def _chart(severities: list[Severity], counts: dict[tuple[Severity, Status], int]) -> str:
    width, bar, gap, label = 640, 18, 8, 80
    totals = [sum(counts[(s, status)] for status in STATUS_ORDER) for s in severities]
    scale = (width - label - 10) / max(max(totals, default=0), 1)
    height = len(severities) * (bar + gap) + gap + 20
    shapes = []
    for row, severity in enumerate(severities):
        y = gap + row * (bar + gap)
        shapes.append(f'<text x="0" y="{y + bar - 4}" font-size="12">{_e(severity.value)}</text>')
        x = float(label)
        for status in STATUS_ORDER:
            n = counts[(severity, status)]
            if not n:
                continue
            w = n * scale
            shapes.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" '
                f'fill="{_STATUS_COLOUR[status]}"><title>{_e(status.value)}: {n}</title></rect>'
            )
            x += w
    legend_y = height - 6
    for index, status in enumerate(STATUS_ORDER):
        x = label + index * 90
        shapes.append(
            f'<rect x="{x}" y="{legend_y - 10}" width="10" height="10" '
            f'fill="{_STATUS_COLOUR[status]}"></rect>'
            f'<text x="{x + 14}" y="{legend_y}" font-size="12">{_e(status.value)}</text>'
        )
    return (
        f'<svg role="img" aria-label="findings by severity and status" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(shapes)}</svg>'
    )


def _matrix(reports: Sequence[Report]) -> str:
    grid = matrix.rows(list(reports))
    header = "".join(f"<th>{_e(cell)}</th>" for cell in grid[0])
    rows = "".join(
        f"<tr><th class='mono'>{_e(row[0])}</th>"
        + "".join(
            f'<td class="cell-{"absent" if cell == matrix.ABSENT else _e(cell)}">{_e(cell)}</td>'
            for cell in row[1:]
        )
        + "</tr>"
        for row in grid[1:]
    )
    return (
        '<section id="matrix"><h2>Rules x environments</h2>'
        f"<table><tr>{header}</tr>{rows}</table></section>"
    )


def _controls(reports: Sequence[Report]) -> str:
    """Findings grouped by the framework controls their rules implement (Azure Policy, MCSB,
    CIS, Prowler): per control, its rules and the statuses of their findings."""
    by_control: dict[tuple[str, str], tuple[str, list[Finding]]] = {}
    for report in reports:
        for finding in report.findings:
            for control in finding.controls:
                key = (control.framework, control.id)
                by_control.setdefault(key, (control.name, []))[1].append(finding)
    if not by_control:
        return ""
    sections = []
    for framework in sorted({framework for framework, _ in by_control}):
        rows = []
        for (_, control_id), (name, found) in sorted(
            (key, value) for key, value in by_control.items() if key[0] == framework
        ):
            statuses = ", ".join(
                f"{sum(f.status is status for f in found)} {status.value}"
                for status in STATUS_ORDER
                if any(f.status is status for f in found)
            )
            rules = ", ".join(sorted({f.rule for f in found}))
            rows.append(
                f"<tr><td class='mono'>{_e(control_id)}</td><td>{_e(name)}</td>"
                f"<td class='mono'>{_e(rules)}</td><td>{_e(statuses)}</td></tr>"
            )
        sections.append(
            f"<h3>{_e(framework)}</h3><table><tr><th>control</th><th>name</th><th>rules</th>"
            f"<th>findings</th></tr>{''.join(rows)}</table>"
        )
    return f'<section id="controls"><h2>Controls by framework</h2>{"".join(sections)}</section>'


def _filters(reports: Sequence[Report]) -> str:
    groups = (
        ("severity", [s.value for s in reversed(SEVERITIES_ASCENDING)]),
        ("status", [s.value for s in STATUS_ORDER]),
        ("environment", [r.environment for r in reports]),
    )
    fieldsets = []
    for name, values in groups:
        boxes = "".join(
            f'<label><input type="checkbox" name="{name}" value="{_e(value)}" checked> '
            f"{_e(value)}</label> "
            for value in values
        )
        fieldsets.append(f"<fieldset><legend>{name}</legend>{boxes}</fieldset>")
    return f'<form class="filters" onsubmit="return false">{"".join(fieldsets)}</form>'


def _findings(reports: Sequence[Report]) -> str:
    articles = []
    for report in reports:
        reads = {rule.id: rule.reads for rule in report.rules}
        ordered = sorted(
            report.findings,
            key=lambda f: (STATUS_ORDER.index(f.status), -f.severity.rank, f.rule, f.resource),
        )
        articles += [
            _finding(report.environment, f, reads.get(f.rule, ()), report.context) for f in ordered
        ]
    return (
        '<section id="findings"><h2>Findings</h2>'
        + _filters(reports)
        + '<p id="shown-count"></p>'
        + "".join(articles)
        + "</section>"
    )


def _finding(
    environment: str, finding: Finding, reads: tuple[str, ...], context: RunContext | None
) -> str:
    colour = _STATUS_COLOUR[finding.status]
    rows = [
        ("Resource", f'<span class="mono">{_e(finding.resource)}</span>'),
        ("Expected", _e(finding.expected)),
        ("Actual", _e(finding.actual)),
    ]
    if finding.message:
        rows.append(("Why", _e(finding.message)))
    evidence = [PART_EVIDENCE.get(part, part) for part in reads]
    if evidence:
        rows.append(("Evidence", "<br>".join(_e(text) for text in evidence)))
    if finding.status is Status.FAIL and finding.remediation:
        rows.append(("Fix", f"<code>{_e(finding.remediation)}</code>"))
    if finding.waiver:
        rows.append(("Waiver", _e(finding.waiver)))
    if finding.baseline_state:
        rows.append(("Baseline", _e(finding.baseline_state)))
    if finding.location is not None:
        declared = _e(f"{finding.location.path} line {finding.location.line}")
        url = policy_line_url(finding.location, context)
        if url:  # a link is followed only when clicked: the page itself still fetches nothing
            declared = f'<a href="{_e(url)}" rel="noopener noreferrer">{declared}</a>'
        rows.append(("Declared in", declared))
    details = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return (
        f'<article class="finding" style="border-left-color:{colour}" '
        f'data-severity="{_e(finding.severity.value)}" data-status="{_e(finding.status.value)}" '
        f'data-environment="{_e(environment)}">'
        f'<h3><span class="badge" style="background:{colour}">{_e(finding.status.value)}</span> '
        f"{_e(finding.severity.value)} · <span class='mono'>{_e(finding.rule)}</span> "
        f"{_e(finding.title)} <small>({_e(environment)})</small></h3>"
        f"<dl>{details}</dl></article>"
    )
