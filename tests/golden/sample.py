"""The hand-built report every format's golden file renders: all statuses and severities,
a waiver, an expired waiver, baseline states, a collection issue and note, and hostile characters."""

from __future__ import annotations

from pathlib import Path

from engram_audit.model import Report

GOLDEN_DIR = Path(__file__).parent
# shared/ sits beside the repository, here and in CI.
REFERENCE_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"  # vendored: see its README
SAMPLE_REPORT = GOLDEN_DIR / "report.json"

SERVER = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-engram-prod/"
    "providers/Microsoft.DBforPostgreSQL/flexibleServers/pg-engram-prod"
)
REPLICA = SERVER + "-replica"


def sample_report() -> Report:
    return Report.model_validate_json(SAMPLE_REPORT.read_text(encoding="utf-8"))
