"""SARIF 2.1.0 for GitHub code scanning: one run per environment, one result per finding to act on.

Rules that implement framework controls (``controls:`` in the policy) list them as tags
(``azure-policy:<definition id>``, ``mcsb:LT-3``, ``cis-azure-3.0.0:5.2.2`` ...), in
``rules[].properties.controls`` with their names, in the help text, and on each result as
``properties.controls``.

What becomes a result, and why:
- ``fail``: a result of the policy rule, at the policy file line that declared it (GitHub
  rejects a whole upload if any result lacks a physical location); the Azure resource id or
  database object is the result's logical location and ``properties.resource``. On planned
  state (a Terraform plan, an ARM template) the resource address is the first logical location
  and ``properties.address``; with ``--iac-root`` the result sits on the file and line of the
  resource block (.tf, .bicep, template), and the policy line becomes a related location.
- ``error``: a result of the separate rule ``engram-audit.evaluation-error``, so "could not
  check" never reopens or masquerades as the rule's own alert.
- ``waived``: not a result. GitHub ignores ``suppressions`` and would open an alert for it;
  waived findings are listed in ``runs[].properties.waivedFindings`` (rule, resource, waiver)
  so the file still records them, and their alerts close like fixed ones.
- ``pass`` / ``skip``: not results (GitHub turns every result into an alert).

``partialFingerprints.primaryLocationLineHash`` is derived from (rule, resource), not from
the policy line's text, so alerts survive edits to the policy file, stay distinct for two
resources under one rule, and close when fixed.

Sample (abridged)::

    {"version": "2.1.0", "runs": [{
      "tool": {"driver": {"name": "engram-audit", "rules": [{"id": "prod.backup.geo",
        "shortDescription": {"text": "Geo-redundant backup enabled"},
        "properties": {"security-severity": "8.0", "tags": ["security", ...]}}]}},
      "automationDetails": {"id": "engram-audit/prod/"},
      "results": [{"ruleId": "prod.backup.geo", "level": "error",
        "message": {"text": "Geo-redundant backup enabled: expected Enabled, found Disabled ..."},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "policies/prod.yaml",
          "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 12, "startColumn": 5}},
          "logicalLocations": [{"fullyQualifiedName": "/subscriptions/.../flexibleServers/pg",
          "name": "pg", "kind": "resource"}]}],
        "partialFingerprints": {"primaryLocationLineHash": "3f2a...:1", ...}}]}]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from engram_audit.model import (
    ControlRef,
    Finding,
    Report,
    RuleInfo,
    Severity,
    SourceLocation,
    Status,
)
from engram_audit.model.snapshot import CollectionIssue, CollectionNote
from engram_audit.reporters.summary import gate_split

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
ERROR_RULE_ID = "engram-audit.evaluation-error"
FINGERPRINT_KEY = "engramAuditFinding/v1"

# GitHub code scanning's documented upload limits.
MAX_RUNS = 20
MAX_RESULTS_PER_RUN = 25_000

# GitHub maps security-severity to its labels: >=9.0 critical, 7.0-8.9 high, 4.0-6.9 medium,
# 0.1-3.9 low. The midpoints keep each severity inside its band.
SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}
LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def render(report: Report) -> str:
    """The SARIF log of one report: a single run for its environment."""
    return render_runs((report,))


def render_runs(reports: Sequence[Report]) -> str:
    """One SARIF log with a run per environment (distinct ``automationDetails.id``)."""
    environments = [report.environment for report in reports]
    if len(set(environments)) != len(environments):
        raise ValueError("one SARIF run per environment: environments must be distinct")
    if len(reports) > MAX_RUNS:
        raise ValueError(f"GitHub accepts at most {MAX_RUNS} runs in one SARIF file")
    document = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [_run(report) for report in reports],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def fingerprint(finding: Finding, *, evaluation_error: bool = False) -> str:
    """Stable hash of (rule, resource); the same finding gets the same value on every run."""
    rule, resource = finding.identity
    parts = (ERROR_RULE_ID, rule, resource) if evaluation_error else (rule, resource)
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _run(report: Report) -> dict[str, Any]:
    findings = sorted(report.findings, key=lambda finding: finding.sort_key)
    actionable = [f for f in findings if f.status in (Status.FAIL, Status.ERROR)]
    kept = _within_limit(actionable)
    rules = _rules(report, findings, kept)
    rule_index = {rule["id"]: index for index, rule in enumerate(rules)}
    fallback = _fallback_location(report)
    results = [_result(finding, rule_index, fallback) for finding in kept]

    notifications = [_collection_notification(issue) for issue in report.collection_issues]
    notifications += [_note_notification(note) for note in report.collection_notes]
    if len(kept) < len(actionable):
        notifications.append(
            {
                "level": "warning",
                "message": {
                    "text": f"{len(actionable) - len(kept)} of {len(actionable)} results were "
                    f"left out to stay within GitHub's limit of {MAX_RESULTS_PER_RUN} results "
                    "a run (lowest severities first); the JSON report has them all."
                },
            }
        )
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications

    return {
        "tool": {
            "driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"{report.tool.name}/{report.environment}/"},
        "originalUriBaseIds": {
            SRCROOT: {"description": {"text": "The directory engram-audit was run from."}}
        },
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {
            "environment": report.environment,
            "generatedAt": report.generated_at.isoformat(),
            "policyFiles": list(report.policy_files),
            "sources": [source.value for source in report.sources],
            "summary": {
                "total": report.summary.total,
                **{s.value: n for s, n in report.summary.by_status.items()},
                **gate_split(report).as_dict(),
            },
            "waivedFindings": [
                {"ruleId": f.rule, "resource": f.resource, "waiver": f.waiver or ""}
                for f in findings
                if f.status is Status.WAIVED
            ],
        },
    }


def _within_limit(actionable: list[Finding]) -> list[Finding]:
    if len(actionable) <= MAX_RESULTS_PER_RUN:
        return actionable
    by_urgency = sorted(actionable, key=lambda f: (-f.severity.rank, f.status is Status.ERROR))
    return sorted(by_urgency[:MAX_RESULTS_PER_RUN], key=lambda finding: finding.sort_key)


def _rules(
    report: Report, findings: Iterable[Finding], results: Iterable[Finding]
) -> list[dict[str, Any]]:
    infos: dict[str, RuleInfo] = {info.id: info for info in report.rules}
    for finding in findings:
        # A report built without rule metadata still needs every result's rule described.
        infos.setdefault(
            finding.rule,
            RuleInfo(
                id=finding.rule,
                check=finding.check,
                title=finding.title,
                severity=finding.severity,
                remediation=finding.remediation,
                location=finding.location,
                controls=finding.controls,
            ),
        )
    rules = [_rule(infos[rule_id]) for rule_id in sorted(infos)]
    if any(finding.status is Status.ERROR for finding in results):
        rules.append(_error_rule())
    return rules


def _rule(info: RuleInfo) -> dict[str, Any]:
    full = info.rationale or info.check_summary or info.title
    help_text = [full]
    help_markdown = [_md(full)]
    if info.remediation:
        help_text.append(f"Remediation: {info.remediation}")
        help_markdown.append(f"**Remediation:** {_md(info.remediation)}")
    checked_by = f"Check {info.check}"
    if info.check_summary:
        checked_by += f": {info.check_summary}"
    help_text.append(checked_by)
    help_markdown.append(
        f"Check `{info.check}`" + (f": {_md(info.check_summary)}" if info.check_summary else "")
    )
    if info.controls:
        help_text.append("Controls: " + "; ".join(_control_text(c) for c in info.controls))
        help_markdown.append(
            "**Controls:** " + "; ".join(_md(_control_text(c)) for c in info.controls)
        )
    if info.location is not None:
        declared = f"{info.location.path}:{info.location.line}"
        help_text.append(f"Declared in {declared}.")
        help_markdown.append(f"Declared in `{declared}`.")
    properties: dict[str, Any] = {
        "security-severity": SECURITY_SEVERITY[info.severity],
        "severity": info.severity.value,
        "check": info.check,
        "precision": "very-high",
        "tags": _tags(info.check, info.controls),
    }
    if info.controls:
        properties["controls"] = [control.model_dump(mode="json") for control in info.controls]
    return {
        "id": info.id,
        "name": _pascal(info.id),
        "shortDescription": {"text": _sentence(info.title)},
        "fullDescription": {"text": _sentence(full)},
        "help": {"text": "\n\n".join(help_text), "markdown": "\n\n".join(help_markdown)},
        "defaultConfiguration": {"level": LEVEL[info.severity]},
        "properties": properties,
    }


def _error_rule() -> dict[str, Any]:
    text = (
        "A policy rule could not be evaluated: the state it needs was not collected or the "
        "check failed. Until it is evaluated the control is unknown, never passing."
    )
    remediation = (
        "Read the result message for the collector's reason (permissions, network, missing "
        "extension) and fix it, then run engram-audit again."
    )
    return {
        "id": ERROR_RULE_ID,
        "name": "EvaluationError",
        "shortDescription": {"text": "A policy rule could not be evaluated."},
        "fullDescription": {"text": text},
        "help": {
            "text": f"{text}\n\nRemediation: {remediation}",
            "markdown": f"{text}\n\n**Remediation:** {remediation}",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"precision": "very-high", "tags": ["engram-audit", "reliability"]},
    }


def _result(
    finding: Finding, rule_index: dict[str, int], fallback: SourceLocation
) -> dict[str, Any]:
    is_error = finding.status is Status.ERROR
    rule_id = ERROR_RULE_ID if is_error else finding.rule
    location = finding.location or fallback
    digest = fingerprint(finding, evaluation_error=is_error)
    iac = finding.iac
    logical = [
        {
            "fullyQualifiedName": finding.resource,
            "name": _short_name(finding.resource),
            "kind": "resource",
        }
    ]
    if iac is not None:
        logical.insert(
            0, {"fullyQualifiedName": iac.address, "name": iac.address, "kind": "resource"}
        )
    physical = _physical(location)
    related: list[dict[str, Any]] = []
    if iac is not None and iac.path is not None and iac.line is not None:
        physical = {
            "artifactLocation": _artifact(iac.path),
            "region": {"startLine": iac.line, "startColumn": 1},
        }
        related.append(
            {
                "id": 1,
                "physicalLocation": _physical(location),
                "message": {"text": f"Policy rule {finding.rule}"},
            }
        )
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index[rule_id],
        "level": "error" if is_error else LEVEL[finding.severity],
        "message": {"text": _message(finding)},
        "locations": [{"physicalLocation": physical, "logicalLocations": logical}],
        "partialFingerprints": {
            "primaryLocationLineHash": f"{digest[:16]}:1",
            FINGERPRINT_KEY: digest,
        },
    }
    if related:
        result["relatedLocations"] = related
    if finding.baseline_state in ("new", "unchanged", "updated", "absent"):
        result["baselineState"] = finding.baseline_state
    properties: dict[str, Any] = {
        "resource": finding.resource,
        "policyRule": finding.rule,
        "check": finding.check,
        "severity": finding.severity.value,
        "status": finding.status.value,
        "expected": finding.expected,
        "actual": finding.actual,
    }
    if finding.waiver:
        properties["waiver"] = finding.waiver
    if finding.controls:
        properties["controls"] = [control.key for control in finding.controls]
    if iac is not None:
        properties["address"] = iac.address
    if not is_error:
        properties["security-severity"] = SECURITY_SEVERITY[finding.severity]
    result["properties"] = properties
    return result


def _physical(location: SourceLocation) -> dict[str, Any]:
    return {
        "artifactLocation": _artifact(location.path),
        "region": {"startLine": location.line, "startColumn": location.column},
    }


def _on(finding: Finding) -> str:
    """The resource, with the plan's or template's address when there is one."""
    if finding.iac is None:
        return finding.resource
    return f"{finding.iac.address} ({finding.resource})"


def _message(finding: Finding) -> str:
    if finding.status is Status.ERROR:
        text = f"{finding.rule} could not be evaluated on {_on(finding)}"
        if finding.message:
            text += f": {finding.message}"
        return _sentence(text)
    text = (
        f"{finding.title} on {_on(finding)}: "
        f"expected {finding.expected or '-'}, found {finding.actual or '-'}"
    )
    parts = [_sentence(text)]
    if finding.message:
        parts.append(_sentence(finding.message))
    if finding.waiver:
        parts.append(_sentence(finding.waiver))
    if finding.status is Status.FAIL and finding.remediation:
        parts.append(
            f"Fix: {finding.remediation}"
        )  # rendered for this finding; rule help has the template
    return " ".join(parts)


def _collection_notification(issue: CollectionIssue) -> dict[str, Any]:
    part = f" ({issue.part})" if issue.part else ""
    return {
        "level": "warning",
        "message": {
            "text": _sentence(
                f"{issue.source.value} collection incomplete for {issue.resource}{part}: "
                + issue.reason
            )
        },
    }


def _note_notification(note: CollectionNote) -> dict[str, Any]:
    part = f" ({note.part})" if note.part else ""
    return {
        "level": "note",
        "message": {"text": _sentence(f"{note.source.value} {note.resource}{part}: {note.note}")},
    }


def _fallback_location(report: Report) -> SourceLocation:
    # GitHub drops the whole upload for a result with no physical location.
    return SourceLocation(
        path=report.policy_files[0] if report.policy_files else "engram-audit.yaml", line=1
    )


def _artifact(path: str) -> dict[str, str]:
    posix = path.replace("\\", "/")
    if PurePosixPath(posix).is_absolute():
        return {"uri": "file://" + quote(posix)}
    while posix.startswith("./"):
        posix = posix[2:]
    return {"uri": quote(posix), "uriBaseId": SRCROOT}


def _short_name(resource: str) -> str:
    return resource.rstrip("/").rsplit("/", 1)[-1] or resource


def _tags(check: str, controls: Sequence[ControlRef] = ()) -> list[str]:
    """The check's family, and each control as ``framework:id`` (GitHub filters alerts by tag)."""
    family = check.split(".", 1)[0]
    return sorted({"security", "compliance", "engram-audit", family}) + [c.key for c in controls]


def _control_text(control: ControlRef) -> str:
    return f"{control.key} ({control.name})" if control.name else control.key


def _pascal(rule_id: str) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in rule_id).split()
    return "".join(word[:1].upper() + word[1:].lower() for word in words) or "Rule"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _md(text: str) -> str:
    # Rule text is policy-authored; keep it from opening HTML in GitHub's rendering.
    return text.replace("<", "&lt;").replace(">", "&gt;")
