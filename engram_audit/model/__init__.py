"""The core model: typed, frozen, JSON-serialisable. Every other layer depends on it."""

from engram_audit.model.base import (
    ALL_SOURCES,
    SEVERITIES_ASCENDING,
    STATUS_ORDER,
    FrozenModel,
    Severity,
    Source,
    Status,
)
from engram_audit.model.policy import ControlRef, Policy, PostgresScope, Rule, SourceLocation
from engram_audit.model.report import Finding, Report, RuleInfo, Summary
from engram_audit.model.snapshot import Snapshot

__all__ = [
    "ALL_SOURCES",
    "SEVERITIES_ASCENDING",
    "STATUS_ORDER",
    "ControlRef",
    "Finding",
    "FrozenModel",
    "Policy",
    "PostgresScope",
    "Report",
    "Rule",
    "RuleInfo",
    "Severity",
    "Snapshot",
    "Source",
    "SourceLocation",
    "Status",
    "Summary",
]
