"""Metric alerts from Resource Graph count only where ARM confirms the identity may read them.

Resource Graph leaves out what the identity may not read, without an error; the emulator models
that (tests.support.arm_permissions), and the collector asks ARM's permissions list, once per
subscription, whether ``Microsoft.Insights/metricAlerts/read`` is granted. These tests run the
real SDK against the emulator and evaluate the production policy: full permissions change no
verdict, a missing permission or a refused permissions list turns the alerts rule into ERROR
(it was FAIL: "no alert"), never PASS or FAIL.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.azure.collector import AzureCollection
from engram_audit.collectors.azure.permissions import Permission, action_matches, allows
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Source
from engram_audit.model.base import Status
from engram_audit.model.report import Finding
from engram_audit.model.snapshot import AzureSection
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for
from tests.azure.conftest import Collect
from tests.support.arm_emulator import ArmEmulator, Fault
from tests.support.arm_world import fleet_world, load_world

pytestmark = pytest.mark.azure

REPO = Path(__file__).resolve().parents[2]
FLEET = load_world("fleet")
SUB = FLEET["subscriptionId"]
OTHER = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"
TAG = ("environment", "prod")
ALERTS_READ = "Microsoft.Insights/metricAlerts/read"
PERMISSIONS = r"/providers/Microsoft\.Authorization/permissions$"
POLICY = load_policy(REPO / "policies" / "prod.yaml")


def _other_fleet() -> dict[str, Any]:
    """A second subscription with one prod-tagged server, covered by its own alerts."""
    template = copy.deepcopy(load_world("prod-unseen-compliant"))
    template["servers"][0]["server"]["tags"] = {"environment": "prod"}
    return fleet_world(template, OTHER, "rg-other", 1)


def _findings(collection: AzureCollection) -> list[Finding]:
    snapshot = assemble(
        "prod", azure=AzureSection(servers=collection.section.servers), issues=collection.issues
    )
    return list(evaluate(POLICY, snapshot, {Source.AZURE}).findings)


def _verdicts(findings: list[Finding]) -> dict[tuple[str, str], Status]:
    return {(f.check, f.resource.casefold()): f.status for f in findings}


def _alerts(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.check == "azure.monitor.alerts"]


# --- the matching rules, as "Understand Azure role definitions" states them ----------------------


@pytest.mark.parametrize(
    ("pattern", "granted"),
    [
        ("*", True),  # Owner, Contributor
        ("*/read", True),  # Reader
        ("Microsoft.Insights/*", True),
        ("Microsoft.Insights/*/read", True),  # "all resource types" of a provider
        ("Microsoft.Insights/metricAlerts/*", True),
        ("microsoft.insights/METRICALERTS/read", True),  # action strings in any case
        ("Microsoft.Insights/metricAlerts/read", True),
        ("Microsoft.Insights/metricAlerts/write", False),
        ("Microsoft.Insights/alertRules/*", False),
        ("Microsoft.Insights/metricAlerts", False),
        ("Microsoft.Insights/metricAlerts/read/extra", False),
        ("Microsoft.Insight/*", False),
        ("*/write", False),
    ],
)
def test_an_action_string_covers_the_alerts_read_as_documented(pattern: str, granted: bool) -> None:
    assert action_matches(pattern, ALERTS_READ) is granted


def test_not_actions_subtract_within_a_permission_but_deny_nothing_another_grants() -> None:
    everything_but_insights = Permission(actions=("*",), not_actions=("Microsoft.Insights/*",))
    monitoring_reader = Permission(
        actions=("Microsoft.Insights/metricAlerts/read",), not_actions=()
    )
    contributor = Permission(
        actions=("*",),
        not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write"),
    )

    assert not allows((everything_but_insights,), ALERTS_READ)
    # NotActions "is not a deny rule": a second role assignment that grants the action does.
    assert allows((everything_but_insights, monitoring_reader), ALERTS_READ)
    assert allows((contributor,), ALERTS_READ)
    assert not allows((contributor,), "Microsoft.Authorization/roleAssignments/delete")
    assert not allows((), ALERTS_READ)


# --- the collector, the real SDK and the emulator -------------------------------------------------


def test_full_permissions_cost_one_read_per_subscription_and_change_no_verdict(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    parts = plan_for(POLICY).parts

    collection = collect(None, subscriptions=(SUB, OTHER), tag=TAG, parts=parts)

    assert collection.issues == ()
    asked = arm.requests_matching(PERMISSIONS)
    assert sorted(r.path.split("/")[2] for r in asked) == sorted([SUB, OTHER])
    assert {r.api_version for r in asked} == {"2022-04-01"}
    # Each is a read against its subscription's budget, like any other.
    assert arm.stats()["reads"] == collection.reads_sent
    findings = _findings(collection)
    alerts = _alerts(findings)
    assert len(alerts) == 3 and Status.ERROR not in {f.status for f in alerts}

    # The same verdicts as reading each server's alerts through ARM's own list.
    for subscription, group, name in (
        (SUB, "rg-zep-prod-weu", "zep-prod-weu-db"),
        (OTHER, "rg-other", "rg-other-db-0"),
    ):
        arm.reset_log()
        by_arm = collect(subscription, resource_group=group, server_name=name, parts=parts)
        assert by_arm.issues == ()
        assert arm.requests_matching(PERMISSIONS) == []  # ARM answers 403 itself: no need
        expected = _verdicts(_findings(by_arm))
        assert {key: _verdicts(findings)[key] for key in expected} == expected


def test_without_the_alerts_read_the_alert_rule_is_error_not_fail(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    full = collect(SUB, tag=TAG)
    arm.set_permissions([{"actions": ["*/read"], "notActions": [ALERTS_READ]}])
    arm.reset_log()
    queries = len(arm.graph_queries())

    collection = collect(SUB, tag=TAG)

    # Resource Graph said nothing about the alerts it left out ...
    assert all(server.metric_alerts for server in full.section.servers)
    assert any("metricalerts" in q["query"] for q in arm.graph_queries()[queries:])
    assert all(r.status == 200 for r in arm.requests)
    # ... and the run does not take that silence for "no alert".
    servers = collection.section.servers
    assert len(servers) == 2 and all(server.metric_alerts is None for server in servers)
    assert {(i.resource, i.part) for i in collection.issues} == {
        (server.id, "metric_alerts") for server in servers
    }
    assert all(ALERTS_READ in i.reason and "Resource Graph" in i.reason for i in collection.issues)
    before, after = _findings(full), _findings(collection)
    assert Status.ERROR not in {f.status for f in _alerts(before)}
    assert {f.status for f in _alerts(after)} == {Status.ERROR}
    # Taking Resource Graph's silence for the alerts would have failed every server instead.
    blind = [server.model_copy(update={"metric_alerts": ()}) for server in servers]
    silence = AzureCollection(section=AzureSection(servers=tuple(blind)), issues=())
    assert {f.status for f in _alerts(_findings(silence))} == {Status.FAIL}
    assert all(ALERTS_READ in f.message for f in _alerts(after))
    # Every other verdict stands: only the alerts' part was in doubt.
    others = {k: v for k, v in _verdicts(before).items() if k[0] != "azure.monitor.alerts"}
    assert {k: v for k, v in _verdicts(after).items() if k[0] != "azure.monitor.alerts"} == others


def test_a_refused_permissions_list_is_error_naming_both_permissions(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.inject(PERMISSIONS, Fault(status=403, error_code="AuthorizationFailed"))

    collection = collect(SUB, tag=TAG)

    assert len(collection.issues) == 2
    for issue in collection.issues:
        assert issue.part == "metric_alerts"
        assert "403" in issue.reason
        assert ALERTS_READ in issue.reason
        assert "Microsoft.Authorization/permissions/read" in issue.reason
    assert {f.status for f in _alerts(_findings(collection))} == {Status.ERROR}


def test_an_unreadable_permissions_answer_is_error(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    arm.set_permissions([{"actions": "*/read"}])  # a string where ARM sends a list

    collection = collect(SUB, tag=TAG)

    assert {i.part for i in collection.issues} == {"metric_alerts"}
    assert all("could not be read" in i.reason for i in collection.issues)


def test_permissions_are_judged_per_subscription(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    arm.set_permissions(
        # Everything but Insights, plus a second assignment that grants the alerts back.
        [
            {"actions": ["*"], "notActions": ["Microsoft.Insights/*"]},
            {"actions": ["Microsoft.Insights/metricAlerts/read"], "notActions": []},
        ],
        subscription=SUB,
    )
    arm.set_permissions([{"actions": ["Microsoft.DBforPostgreSQL/*/read"]}], subscription=OTHER)

    collection = collect(None, subscriptions=(SUB, OTHER), tag=TAG)

    (issue,) = collection.issues
    assert issue.resource.split("/")[2] == OTHER and issue.part == "metric_alerts"
    by_sub = {s.subscription_id: s.metric_alerts for s in collection.section.servers}
    assert by_sub[SUB] and by_sub[OTHER] is None


def test_no_rule_reading_alerts_means_no_permissions_read(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.inject(PERMISSIONS, Fault(status=403, error_code="AuthorizationFailed"))

    collection = collect(SUB, tag=TAG, parts=frozenset({"azure.server", "azure.parameters"}))

    assert collection.issues == ()
    assert arm.requests_matching(PERMISSIONS) == []
