"""The JSON report: the contract scripts rely on, and the input of ``--baseline`` and ``diff``.

Top-level keys ``tool``, ``environment``, ``generated_at``, ``summary`` and ``findings`` (each
with ``rule``, ``check``, ``title``, ``severity``, ``status``, ``resource``, ``expected``,
``actual``, ``message``, ``remediation``) are stable; further keys may be added. Sample::

    {"tool": {"name": "engram-audit", "version": "0.1.0"}, "environment": "prod",
     "generated_at": "2026-11-20T06:00:00Z", "sources": ["azure", "dsn", "postgres"], ...,
     "summary": {"total": 40, "by_status": {"fail": 2, ...}, "by_severity": {...}},
     "findings": [{"rule": "ZEP-AZ-BACKUP-RETENTION", "check": "azure.backup.retention_days",
                   "status": "fail", "expected": ">= 35 days", "actual": "7 days", ...}]}
"""

from __future__ import annotations

from engram_audit.inputs.json_source import dump_json
from engram_audit.model import Report


def render(report: Report) -> str:
    """The report in the JSON dialect ``--baseline`` and ``diff`` read back (no NaN; DEL and
    C1 control characters escaped)."""
    return dump_json(report.model_dump(mode="json"))
