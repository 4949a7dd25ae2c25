"""docs/azure.md's reads-per-check table is generated from the code, and is current."""

from __future__ import annotations

from pathlib import Path

from engram_audit.collectors.azure.reads import END, START, rewrite, table
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "azure.md"


def test_the_reads_table_in_docs_azure_md_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text
    assert rewrite(text) == text, (
        "docs/azure.md is stale: run .venv/bin/python -m engram_audit.collectors.azure.reads "
        "docs/azure.md"
    )


def test_the_production_policy_reads_what_the_table_says() -> None:
    parts = plan_for(load_policy(REPO / "policies" / "prod.yaml")).parts or frozenset()
    azure = {part for part in parts if part.startswith("azure.")}
    assert azure == {
        "azure.server",
        "azure.parameters",
        "azure.firewall_rules",
        "azure.backups",
        "azure.administrators",
        "azure.metric_alerts",
        "azure.diagnostic_settings",
        "azure.threat_protection",
        "azure.private_endpoint_connections",
    }
    assert all(f"`{part}`" in table() for part in azure)
