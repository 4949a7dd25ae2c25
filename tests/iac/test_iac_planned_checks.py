"""Which checks judge planned state is declared once, next to what they read; the engine skips
the others on a plan or template, and the planned evaluation never passes on an unknown."""

from __future__ import annotations

import pytest

from engram_audit.checks import CATALOGUE, get_check
from engram_audit.checks import planned as planned_module
from engram_audit.checks.azure.backup import RetentionParams
from engram_audit.engine import evaluate
from engram_audit.model import Snapshot, Source, Status
from engram_audit.policy.loader import load_policy
from tests.conftest import POLICIES
from tests.support.iac_cases import CASES_BY_NAME, planned_snapshot

# Backups exist only on a running server; diagnostic settings, Defender and private endpoints
# are separate resources the plan and template readers do not map yet, so their checks say
# "needs live state" rather than judge a part the planned state cannot hold.
LIVE_ONLY = {
    "azure.backup.recent",
    "azure.monitor.diagnostic_settings",
    "azure.defender.threat_protection",
    "azure.network.private_connectivity",
}


def test_every_azure_check_but_the_live_only_ones_judges_planned_state() -> None:
    for entry in CATALOGUE:
        wanted = entry.id.startswith("azure.") and entry.id not in LIVE_ONLY
        assert entry.planned is wanted, entry.id


def test_the_engine_skips_checks_of_running_servers_on_planned_state_only(
    prod_compliant: Snapshot,
) -> None:
    policy = load_policy(POLICIES / "prod.yaml")
    planned = planned_snapshot(CASES_BY_NAME["handwritten-prod-compliant"])
    findings = {f.rule: f for f in evaluate(policy, planned, set(Source)).findings}
    recent = findings["ZEP-AZ-BACKUP-RECENT"]
    assert (recent.status, recent.resource) == (Status.SKIP, "*")
    assert recent.message.startswith(
        "needs live state: azure.backup.recent judges a running server"
    )
    live = {f.rule: f for f in evaluate(policy, prod_compliant, set(Source)).findings}
    assert live["ZEP-AZ-BACKUP-RECENT"].status is Status.PASS


def test_a_source_not_selected_stays_skipped_for_that_reason() -> None:
    policy = load_policy(POLICIES / "prod.yaml")
    planned = planned_snapshot(CASES_BY_NAME["handwritten-prod-compliant"])
    findings = {f.rule: f for f in evaluate(policy, planned, {Source.AZURE}).findings}
    assert findings["ZEP-PG-VERSION"].message == "source not selected: postgres"


def test_too_many_combinations_are_error_never_a_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planned_module, "MAX_VARIANTS", 1)
    check = get_check("azure.backup.retention_days")
    assert check is not None
    snapshot = planned_snapshot(CASES_BY_NAME["handwritten-unknowns"])
    (outcome,) = check.evaluate_snapshot(RetentionParams(min_days=35), snapshot)
    assert outcome.status is Status.ERROR
    assert outcome.message == "backup_retention_days: unknown until apply"


def test_a_value_every_candidate_agrees_on_is_decided() -> None:
    check = get_check("azure.backup.retention_days")
    assert check is not None
    snapshot = planned_snapshot(CASES_BY_NAME["handwritten-unknowns"])
    # 1-35 days: every candidate is at least one day, none is more than 35.
    (outcome,) = check.evaluate_snapshot(RetentionParams(min_days=1, max_days=35), snapshot)
    assert outcome.status is Status.PASS
    assert outcome.actual == "backup_retention_days unknown until apply"
