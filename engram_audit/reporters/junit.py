"""JUnit XML for Azure DevOps PublishTestResults, GitLab, Jenkins: valid against the junit-10 XSD.

One ``testsuite`` per (environment, resource), one ``testcase`` per (rule, resource); a rule's
framework controls are a suite property ``controls <rule>`` and a ``Controls:`` line in details:
``failure`` for fail, ``error`` for error, ``skipped`` for skip and waived (with the reason).
Test names are unique and stable: GitLab keeps only the first of duplicate
(classname, name) pairs, so a repeated (rule, resource) gets `` #2``, `` #3``.
Checks have no duration, so every time is ``0.000``; ``timestamp`` is the snapshot's time
(UTC, no offset, as Jenkins and Azure DevOps parse it), keeping output byte-identical.

Written with the standard library rather than ``junit-xml``: junit-xml 1.9 always writes
``disabled`` on ``testsuite``/``testsuites`` (not in the XSD) and unrounded float times,
and has no switch for either; the fix would be rewriting its tree after the fact.

Sample::

    <?xml version="1.0" encoding="utf-8"?>
    <testsuites name="engram-audit prod" tests="3" failures="1" errors="0" time="0.000">
      <testsuite name="prod /subscriptions/.../flexibleServers/pg" tests="2" failures="1" errors="0"
                 skipped="1" time="0.000" timestamp="2031-01-15T03:00:00" package="prod">
        <properties><property name="environment" value="prod" />...</properties>
        <testcase name="prod.backup.geo" classname="prod /subscriptions/.../pg" time="0.000">
          <failure type="high" message="Geo-redundant backup: expected Enabled, found Disabled">
    Resource: /subscriptions/.../pg ...</failure>
        </testcase>
        <testcase name="prod.backup.days" ...><skipped message="waived: ..." /></testcase>
      </testsuite>
    </testsuites>
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import UTC

from engram_audit.model import Finding, Report, Status
from engram_audit.model.snapshot import CollectionIssue
from engram_audit.model.values import same_resource_id
from engram_audit.reporters.summary import gate_split

ZERO_TIME = "0.000"

# Characters XML 1.0 forbids anywhere, even escaped (control characters, lone surrogates,
# U+FFFE/U+FFFF); ElementTree would write them raw and produce an unparseable file.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    return _ILLEGAL_XML.sub("", text)


def render(report: Report) -> str:
    return render_many([report])


def render_many(reports: Sequence[Report]) -> str:
    """One ``testsuites`` document; suites are per (environment, resource)."""
    environments = " ".join(report.environment for report in reports)
    name = f"{reports[0].tool.name} {environments}" if reports else "engram-audit"
    root = ET.Element("testsuites", {"name": clean(name)})
    totals: Counter[str] = Counter()
    for report in reports:
        findings = sorted(report.findings, key=lambda finding: finding.sort_key)
        by_resource: dict[str, list[Finding]] = {}
        for finding in findings:
            by_resource.setdefault(finding.resource, []).append(finding)
        for resource in sorted(by_resource):
            suite, counts = _suite(report, resource, by_resource[resource])
            root.append(suite)
            totals.update(counts)
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", ZERO_TIME)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _suite(
    report: Report, resource: str, findings: list[Finding]
) -> tuple[ET.Element, Counter[str]]:
    counts: Counter[str] = Counter(tests=len(findings))
    counts["failures"] = sum(report.gating(f) for f in findings)
    counts["errors"] = sum(f.status is Status.ERROR for f in findings)
    skipped = sum(f.status in (Status.SKIP, Status.WAIVED) for f in findings)
    timestamp = report.generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    split = gate_split(report)
    suite = ET.Element(
        "testsuite",
        {
            "name": clean(f"{report.environment} {resource}"),
            "tests": str(counts["tests"]),
            "failures": str(counts["failures"]),
            "errors": str(counts["errors"]),
            "skipped": str(skipped),
            "time": ZERO_TIME,
            "timestamp": timestamp,
            "package": clean(report.environment),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("environment", report.environment),
        ("resource", resource),
        ("generated_at", report.generated_at.isoformat()),
        ("policy_files", ", ".join(report.policy_files)),
        # The junit-10 XSD allows no properties on <testsuites>: the run's gate is stated on
        # every suite, so a reader of any one suite knows why a failure is a passing test.
        ("fail_on", split.fail_on),
        ("below_gate_failures", str(split.below_gate)),
        # Test cases carry no properties in the junit-10 XSD: each rule's controls are stated
        # on its suite, one property per rule.
        *_controls_properties(findings),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": clean(value)})

    seen: Counter[str] = Counter()
    # GitLab shows the classname as the suite; the full resource keeps (classname, name) unique.
    classname = clean(f"{report.environment} {resource}")
    for finding in findings:
        seen[finding.rule] += 1
        name = finding.rule if seen[finding.rule] == 1 else f"{finding.rule} #{seen[finding.rule]}"
        suite.append(_testcase(finding, clean(name), classname, gating=report.gating(finding)))

    issues = [i for i in report.collection_issues if same_resource_id(i.resource, resource)]
    if issues:
        ET.SubElement(suite, "system-err").text = clean("\n".join(map(_issue_line, issues)))
    return suite, counts


def _controls_properties(findings: list[Finding]) -> list[tuple[str, str]]:
    """``controls <rule>`` -> ``framework:id, ...`` for each rule in the suite with controls."""
    by_rule: dict[str, str] = {}
    for finding in findings:
        if finding.controls and finding.rule not in by_rule:
            by_rule[finding.rule] = ", ".join(control.key for control in finding.controls)
    return [(f"controls {rule}", keys) for rule, keys in sorted(by_rule.items())]


def _testcase(finding: Finding, name: str, classname: str, *, gating: bool) -> ET.Element:
    case = ET.Element("testcase", {"name": name, "classname": classname, "time": ZERO_TIME})
    status = finding.status
    if status is Status.FAIL and not gating:
        # Below --fail-on: a failed test would turn Azure DevOps and Jenkins red while the
        # gate passed, so it is a passing test that carries the finding in its output.
        ET.SubElement(case, "system-out").text = clean(
            f"{finding.severity.value} finding below the gate: {_details(finding)}"
        )
    elif status is Status.FAIL:
        on = f" on {finding.iac.address}" if finding.iac is not None else ""
        headline = (
            f"{finding.title}{on}: expected {finding.expected or '-'}, "
            f"found {finding.actual or '-'}"
        )
        _outcome(case, "failure", finding.severity.value, headline, _details(finding))
    elif status is Status.ERROR:
        headline = f"{finding.rule} could not be evaluated: {finding.message or 'unknown reason'}"
        _outcome(case, "error", "evaluation-error", headline, _details(finding))
    elif status is Status.SKIP:
        _outcome(case, "skipped", "skip", f"skipped: {finding.message or 'not applicable'}", "")
    elif status is Status.WAIVED:
        _outcome(
            case, "skipped", "waived", f"waived: {finding.waiver or 'waiver'}", _details(finding)
        )
    return case


def _outcome(case: ET.Element, tag: str, kind: str, message: str, text: str) -> None:
    element = ET.SubElement(case, tag, {"type": kind, "message": clean(message)})
    if text:
        element.text = clean(text)


def _details(finding: Finding) -> str:
    lines = [
        f"Rule: {finding.rule} ({finding.severity.value})",
        f"Check: {finding.check}",
        f"Resource: {finding.resource}",
        *_address(finding),
        f"Expected: {finding.expected}",
        f"Actual: {finding.actual}",
    ]
    if finding.message:
        lines.append(f"Message: {finding.message}")
    if finding.waiver:
        lines.append(f"Waiver: {finding.waiver}")
    if finding.baseline_state:
        lines.append(f"Baseline: {finding.baseline_state}")
    if finding.remediation:
        lines.append(f"Remediation: {finding.remediation}")
    if finding.controls:
        lines.append(
            "Controls: "
            + "; ".join(f"{c.key} ({c.name})" if c.name else c.key for c in finding.controls)
        )
    if finding.location is not None:
        lines.append(f"Declared in: {finding.location.path}:{finding.location.line}")
    return "\n".join(lines)


def _address(finding: Finding) -> list[str]:
    """Planned state: the plan's or template's resource address, and where it is declared."""
    iac = finding.iac
    if iac is None:
        return []
    lines = [f"Address: {iac.address}"]
    if iac.path is not None and iac.line is not None:
        lines.append(f"Declared at: {iac.path}:{iac.line}")
    return lines


def _issue_line(issue: CollectionIssue) -> str:
    part = f" ({issue.part})" if issue.part else ""
    return f"collection incomplete{part}: {issue.reason}"
