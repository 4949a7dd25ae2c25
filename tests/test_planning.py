"""The collection plan is derived from the enabled rules' declarations, not from check ids."""

from __future__ import annotations

from pathlib import Path

from engram_audit.checks import get_check
from engram_audit.model.plan import ExpiredFactsPlan, SessionRetentionPlan
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for

POLICIES = Path(__file__).parents[1] / "policies"


def test_plan_parts_are_the_union_of_enabled_rules_reads() -> None:
    policy = load_policy(POLICIES / "prod.yaml")
    plan = plan_for(policy)
    expected: set[str] = set()
    for rule in policy.enabled_rules():
        check = get_check(rule.check)
        assert check is not None
        expected |= check.reads
    assert plan.parts == frozenset(expected)
    assert "azure.firewall_rules" in expected and "postgres.vector_indexes" in expected


def test_a_policy_without_alert_rules_does_not_ask_for_alerts() -> None:
    policy = load_policy(POLICIES / "prod.yaml")
    without = policy.model_copy(
        update={"rules": tuple(r for r in policy.rules if r.check != "azure.monitor.alerts")}
    )
    assert plan_for(policy).wants("azure.metric_alerts")
    assert not plan_for(without).wants("azure.metric_alerts")


def test_requests_carry_the_rules_params() -> None:
    plan = plan_for(load_policy(POLICIES / "prod.yaml"))
    assert isinstance(plan.session_retention, SessionRetentionPlan)
    assert isinstance(plan.expired_facts, ExpiredFactsPlan)
    policy = load_policy(POLICIES / "prod.yaml")
    retention = next(r for r in policy.enabled_rules() if r.check == "pg.retention.sessions")
    assert plan.session_retention.table == retention.params.get("table", "sessions")
    assert plan.dsn_variables  # the prod policy checks application DSNs
