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
    [requested] = plan.retention
    assert isinstance(requested, SessionRetentionPlan)
    assert isinstance(plan.expired_facts, ExpiredFactsPlan)
    policy = load_policy(POLICIES / "prod.yaml")
    retention = next(r for r in policy.enabled_rules() if r.check == "pg.retention.sessions")
    assert requested.table == retention.params.get("table", "sessions")
    assert plan.dsn_variables  # the prod policy checks application DSNs


def test_several_retention_rules_are_each_requested_once() -> None:
    """Zep's session and message tables (and a duplicate rule) give two retention requests."""
    from engram_audit.model import Rule, Severity
    from engram_audit.model.plan import SoftDeletedPlan

    def rule(rule_id: str, check: str, **params: object) -> Rule:
        return Rule(id=rule_id, check=check, severity=Severity.HIGH, title=rule_id, params=params)

    policy = load_policy(POLICIES / "prod.yaml").model_copy(
        update={
            "rules": (
                rule("A", "pg.retention.sessions", table="session"),
                rule("B", "pg.retention.sessions", table="message"),
                rule("C", "pg.retention.sessions", table="session"),
                rule("D", "pg.retention.soft_deleted", table="session"),
                rule("E", "pg.retention.soft_deleted", table="session", max_age_hours=1),
            )
        }
    )
    plan = plan_for(policy)
    assert [r.table for r in plan.retention] == ["session", "message"]
    # The default: deleted_at when the table has it; a named column is required.
    assert plan.retention[0].deleted_column == "deleted_at"
    assert not plan.retention[0].deleted_column_required
    assert plan.soft_deleted == (
        SoftDeletedPlan(table="session"),
        SoftDeletedPlan(table="session", max_age_hours=1),
    )
    assert plan.expired_facts is None
    assert plan.wants("postgres.soft_deleted") and plan.wants("postgres.session_retention")


def test_a_named_soft_delete_column_is_required_and_an_empty_one_counts_every_row() -> None:
    from engram_audit.checks import get_check

    check = get_check("pg.retention.sessions")
    assert check is not None
    [named] = check.requests(check.parse_params({"deleted_column": "removed_at"}))
    [none] = check.requests(check.parse_params({"deleted_column": ""}))
    assert isinstance(named, SessionRetentionPlan) and isinstance(none, SessionRetentionPlan)
    assert (named.deleted_column, named.deleted_column_required) == ("removed_at", True)
    assert (none.deleted_column, none.deleted_column_required) == (None, False)
