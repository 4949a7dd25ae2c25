"""The JSON report: the contract scripts rely on, and the input of ``--baseline`` and ``diff``.

Top-level keys ``tool``, ``environment``, ``generated_at``, ``summary`` and ``findings`` (each
with ``rule``, ``check``, ``title``, ``severity``, ``status``, ``resource``, ``expected``,
``actual``, ``message``, ``remediation``) are stable; further keys may be added (1.2: each
finding's and rule's ``controls``, ``{framework, id, name}``, the framework controls its rule
implements). ``gate`` states
how many failures fail the gate at ``fail_on`` and how many are reported below it. Sample::

    {"tool": {"name": "engram-audit", "version": "0.1.0"}, "environment": "prod",
     "generated_at": "2026-11-20T06:00:00Z", "sources": ["azure", "dsn", "postgres"], ...,
     "summary": {"total": 40, "by_status": {"fail": 2, ...}, "by_severity": {...}},
     "findings": [{"rule": "ZEP-AZ-BACKUP-RETENTION", "check": "azure.backup.retention_days",
                   "status": "fail", "expected": ">= 35 days", "actual": "7 days", ...}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engram_audit.inputs.json_source import dump_json
from engram_audit.model import Report
from engram_audit.model.report import REPORT_SCHEMA_VERSION
from engram_audit.reporters.summary import gate_split


def render(report: Report) -> str:
    """The report in the JSON dialect ``--baseline`` and ``diff`` read back (no NaN; DEL and
    C1 control characters escaped)."""
    return dump_json(_document(report))


def render_many(reports: Sequence[Report]) -> str:
    """Several environments in one document: ``{"schema_version", "environments": [report,
    ...]}``, each entry exactly what ``render`` writes for that environment."""
    document = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "environments": [_document(report) for report in reports],
    }
    return dump_json(document)


def _document(report: Report) -> dict[str, Any]:
    document = report.model_dump(mode="json")
    for finding in document["findings"]:
        if finding.get("iac") is None:  # live state: no plan or template resource to name
            finding.pop("iac", None)
    document["gate"] = gate_split(report).as_dict()
    return document


def load(text: str) -> Report:
    """Read a JSON report back (for baselines and report diffs); ``gate`` is derived, not read."""
    return Report.model_validate_json(text)
