"""Engine semantics: unknown is never a pass, sources, collection issues, determinism, exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engram_audit.checks.base import CheckContext, NoParams, Outcome, check
from engram_audit.engine import ALL_RESOURCES, evaluate
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.model import ALL_SOURCES, Policy, Rule, Severity, Snapshot, Source, Status
from engram_audit.model.snapshot import CollectionIssue
from engram_audit.reporters import json_report
from tests.conftest import snapshot_data


def statuses(report: Any, rule: str) -> list[Status]:
    return [f.status for f in report.findings if f.rule == rule]


def test_compliant_prod_is_clean(prod_policy: Policy, prod_compliant: Snapshot) -> None:
    report = evaluate(prod_policy, prod_compliant, ALL_SOURCES)
    assert report.summary.by_status[Status.FAIL] == 0
    assert report.summary.by_status[Status.ERROR] == 0
    assert exit_code(report, Severity.LOW) is ExitCode.CLEAN
    assert {f.rule for f in report.findings} == {r.id for r in prod_policy.enabled_rules()}


def test_drifted_prod_fails_each_planted_violation(
    prod_policy: Policy, prod_drifted: Snapshot
) -> None:
    report = evaluate(prod_policy, prod_drifted, ALL_SOURCES)
    failed = {f.rule: f for f in report.findings if f.status is Status.FAIL}
    assert {
        "ZEP-AZ-BACKUP-RETENTION",
        "ZEP-AZ-GEO-BACKUP",
        "ZEP-AZ-HA",
        "ZEP-AZ-TLS-REQUIRED",
        "ZEP-AZ-FIREWALL-OPEN",
        "ZEP-AZ-ALLOW-AZURE-SERVICES",
        "ZEP-AZ-PGBOUNCER",
        "ZEP-AZ-ALERTS",
        "ZEP-AZ-BACKUP-RECENT",
        "ZEP-AZ-PUBLIC-ACCESS",
        "ZEP-AZ-PG-STAT-STATEMENTS",
        "ZEP-DSN-SSLMODE",
        "ZEP-PG-TLS-CLIENTS",
        "ZEP-PG-VECTOR-INDEX",
        "ZEP-PG-INDEX-VALID",
        "ZEP-PG-SESSION-RETENTION",
    } <= set(failed)
    assert (
        failed["ZEP-AZ-BACKUP-RETENTION"].expected,
        failed["ZEP-AZ-BACKUP-RETENTION"].actual,
    ) == (">= 35 days", "7 days")
    assert failed["ZEP-AZ-GEO-BACKUP"].actual == "disabled"
    assert "SKU" not in {f.rule for f in report.findings if f.status is Status.FAIL}, (
        "lowercase tier must pass"
    )
    assert exit_code(report, Severity.LOW) is ExitCode.FAILED
    assert exit_code(report, Severity.CRITICAL) is ExitCode.FAILED
    only_info = report.model_copy(
        update={"findings": tuple(f for f in report.findings if f.severity is Severity.INFO)}
    )
    assert exit_code(only_info, Severity.LOW) is ExitCode.CLEAN


def test_unselected_source_is_skip_not_pass(prod_policy: Policy, prod_drifted: Snapshot) -> None:
    report = evaluate(prod_policy, prod_drifted, {Source.POSTGRES})
    azure = [f for f in report.findings if f.check.startswith("azure.")]
    assert azure and all(
        f.status is Status.SKIP and f.message == "source not selected: azure" for f in azure
    )
    storage = [f for f in report.findings if f.check == "pg.storage.utilization"]
    assert [f.status for f in storage] == [Status.SKIP] and storage[
        0
    ].message == "source not selected: azure"
    assert report.sources == (Source.POSTGRES,)


def test_selected_source_missing_from_snapshot_is_error_and_exit_3(prod_policy: Policy) -> None:
    data = snapshot_data("prod-compliant")
    data["azure"] = None
    report = evaluate(prod_policy, Snapshot.model_validate(data), ALL_SOURCES)
    azure = [
        f for f in report.findings if "azure" in f.check or f.check == "pg.storage.utilization"
    ]
    assert azure and all(f.status is Status.ERROR and f.resource == ALL_RESOURCES for f in azure)
    assert "no azure section" in azure[0].message
    assert exit_code(report, Severity.LOW) is ExitCode.INCOMPLETE


def test_missing_part_errors_only_the_checks_that_need_it(prod_policy: Policy) -> None:
    data = snapshot_data("prod-drifted")
    server = data["azure"]["servers"][0]
    server["firewall_rules"] = None
    data["issues"] = [
        {
            "source": "azure",
            "resource": server["id"],
            "part": "firewall_rules",
            "reason": "403 Forbidden: missing Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/read",
        }
    ]
    report = evaluate(prod_policy, Snapshot.model_validate(data), ALL_SOURCES)
    assert statuses(report, "ZEP-AZ-FIREWALL-OPEN") == [Status.ERROR]
    assert statuses(report, "ZEP-AZ-ALLOW-AZURE-SERVICES") == [Status.ERROR]
    error = next(f for f in report.findings if f.rule == "ZEP-AZ-FIREWALL-OPEN")
    assert "firewallRules/read" in error.message
    assert statuses(report, "ZEP-AZ-BACKUP-RETENTION") == [Status.FAIL], (
        "the rest is still evaluated"
    )
    assert exit_code(report, Severity.LOW) is ExitCode.INCOMPLETE, "incomplete wins over failed"


def test_uncollected_server_is_error_for_every_azure_rule(prod_policy: Policy) -> None:
    data = snapshot_data("prod-compliant")
    data["issues"] = [
        {
            "source": "azure",
            "resource": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/other",
            "part": None,
            "reason": "403 Forbidden",
        }
    ]
    report = evaluate(prod_policy, Snapshot.model_validate(data), ALL_SOURCES)
    errors = [f for f in report.findings if f.status is Status.ERROR]
    azure_rules = {
        r.id
        for r in prod_policy.enabled_rules()
        if r.check.startswith("azure.") or r.check == "pg.storage.utilization"
    }
    assert {f.rule for f in errors} == azure_rules
    assert all(f.resource.endswith("/other") and "403 Forbidden" in f.message for f in errors)


def test_zero_resources_is_skip_only_when_the_empty_scope_was_accepted(
    prod_policy: Policy,
) -> None:
    # A collector records an empty scope as an issue unless --allow-empty accepted it: only a
    # snapshot with no resources *and* no issue reads as "no resources examined".
    data = snapshot_data("prod-compliant")
    data["azure"]["servers"] = []
    accepted = evaluate(prod_policy, Snapshot.model_validate(data), {Source.AZURE})
    version = [f for f in accepted.findings if f.rule == "ZEP-AZ-VERSION"]
    assert [(f.status, f.message) for f in version] == [(Status.SKIP, "no resources examined")]

    reason = "no flexible server matched tag environment=prdo in subscription x: 5 listed"
    data["issues"] = [{"source": "azure", "resource": "/subscriptions/x", "reason": reason}]
    empty = evaluate(prod_policy, Snapshot.model_validate(data), {Source.AZURE})
    version = [f for f in empty.findings if f.rule == "ZEP-AZ-VERSION"]
    assert [(f.status, f.message) for f in version] == [
        (Status.ERROR, f"could not be collected: {reason}")
    ]
    assert exit_code(empty) == ExitCode.INCOMPLETE


@check("test.crashes", sources=[Source.AZURE], params=NoParams, reads=("azure.server",))
def _crashing(params: NoParams, context: CheckContext) -> Iterator[Outcome]:
    """A check with a bug."""
    raise KeyError("boom")
    yield  # pragma: no cover


def test_crashing_check_is_error_not_pass(
    monkeypatch: pytest.MonkeyPatch, prod_compliant: Snapshot
) -> None:
    from engram_audit import engine

    monkeypatch.setattr(engine, "get_check", lambda check_id: _crashing)
    policy = Policy(
        environment="prod",
        rules=(Rule(id="X", check="test.crashes", severity=Severity.HIGH, title="x"),),
    )
    report = evaluate(policy, prod_compliant, ALL_SOURCES)
    [finding] = report.findings
    assert finding.status is Status.ERROR and "KeyError" in finding.message


@check("test.fails_then_raises", sources=[Source.AZURE], params=NoParams, reads=("azure.server",))
def _fails_then_raises(params: NoParams, context: CheckContext) -> Iterator[Outcome]:
    """Fails on the first server, then hits a bug on the next."""
    yield Outcome("server-a", Status.FAIL, "x", "y")
    raise KeyError("boom on server-b")


def test_a_failure_before_a_crash_is_kept(
    monkeypatch: pytest.MonkeyPatch, prod_compliant: Snapshot
) -> None:
    """Losing A's FAIL would close its SARIF alert and make a baseline call it fixed."""
    from engram_audit import engine

    monkeypatch.setattr(engine, "get_check", lambda check_id: _fails_then_raises)
    policy = Policy(
        environment="prod",
        rules=(Rule(id="X", check="test.fails_then_raises", severity=Severity.HIGH, title="x"),),
    )
    report = evaluate(policy, prod_compliant, ALL_SOURCES)
    assert [(f.resource, f.status) for f in report.findings] == [
        ("*", Status.ERROR),
        ("server-a", Status.FAIL),
    ]
    assert exit_code(report) == ExitCode.INCOMPLETE


def test_same_input_gives_byte_identical_report(
    prod_policy: Policy, prod_drifted: Snapshot
) -> None:
    first = json_report.render(evaluate(prod_policy, prod_drifted, ALL_SOURCES))
    second = json_report.render(
        evaluate(prod_policy, prod_drifted, frozenset(reversed(list(ALL_SOURCES))))
    )
    assert first == second
    assert '"generated_at": "2026-11-20T06:00:00Z"' in first


def test_findings_sorted_and_unique_per_rule_and_resource(
    prod_policy: Policy, prod_drifted: Snapshot
) -> None:
    report = evaluate(prod_policy, prod_drifted, ALL_SOURCES)
    keys = [(f.rule, f.resource) for f in report.findings]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_collection_issue_alone_makes_the_run_incomplete(prod_policy: Policy) -> None:
    data = snapshot_data("prod-compliant")
    data["issues"] = [
        CollectionIssue(
            source=Source.POSTGRES,
            resource="db:5432/zep",
            part="statements",
            reason="permission denied",
        ).model_dump(mode="json")
    ]
    report = evaluate(prod_policy, Snapshot.model_validate(data), ALL_SOURCES)
    assert exit_code(report, Severity.LOW) is ExitCode.INCOMPLETE
    assert (
        exit_code(
            evaluate(prod_policy, Snapshot.model_validate(data), {Source.AZURE}), Severity.LOW
        )
        is ExitCode.CLEAN
    )
