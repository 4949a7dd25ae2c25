"""Every official ARM example (servers, configurations, firewall rules, backups and the other
parts) goes through the real SDK and the HTTPS emulator into the snapshot, and evaluates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Source, Status
from engram_audit.policy.loader import load_policy, policy_path_for
from tests.azure.conftest import Collect
from tests.support.arm_emulator import ArmEmulator
from tests.support.arm_world import example_body, official_example, official_server_examples

pytestmark = pytest.mark.azure

REPO = Path(__file__).resolve().parents[2]
SUB = "ffffffff-ffff-ffff-ffff-ffffffffffff"
RG = "exampleresourcegroup"
SERVER_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.DBforPostgreSQL/"
    "flexibleServers/exampleserver"
)
_ID = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/.*/flexibleServers/([^/]+)$", re.I)


def _values(relative: str) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = example_body(relative)["value"]
    return values


def _examples_world(server: dict[str, Any]) -> dict[str, Any]:
    """One server with every official child example; lists with a nextLink get a 2nd page."""
    return {
        "subscriptionId": SUB,
        "servers": [
            {
                "server": server,
                "configurations": {
                    "pages": [
                        example_body("2025-08-01/ConfigurationsListByServer.subset.json"),
                        {
                            "value": [
                                example_body("2025-08-01/ConfigurationsGet.json"),
                                example_body("2024-08-01/ConfigurationGet.json"),
                            ]
                        },
                    ]
                },
                "firewallRules": {
                    "pages": [
                        example_body("2025-08-01/FirewallRulesListByServer.json"),
                        example_body("2024-08-01/FirewallRuleListByServer.json"),
                        {"value": [example_body("2025-08-01/FirewallRulesGet.json")]},
                    ]
                },
                "backups": {
                    "pages": [
                        example_body("2025-08-01/BackupsAutomaticAndOnDemandListByServer.json"),
                        example_body("2024-08-01/BackupListByServer.json"),
                        {"value": [example_body("2025-08-01/BackupsAutomaticAndOnDemandGet.json")]},
                    ]
                },
                "databases": _values("2025-08-01/DatabasesListByServer.json"),
                "administrators": _values(
                    "2025-08-01/AdministratorsMicrosoftEntraListByServer.json"
                )
                + _values("2024-08-01/AdministratorsListByServer.json"),
                "privateEndpointConnections": _values(
                    "2025-08-01/PrivateEndpointConnectionsList.json"
                ),
                "replicas": _values("2025-08-01/ReplicasListByServer.json"),
                "advancedThreatProtectionSettings": _values(
                    "2025-08-01/AdvancedThreatProtectionSettingsListByServer.json"
                ),
                "diagnosticSettings": _values("monitor/listDiagnosticSettings.json"),
            }
        ],
        "metricAlerts": [
            *_values("monitor/listMetricAlert.json"),
            example_body("monitor/getMetricAlertSingleResource.json"),
        ],
    }


def _example_ids(server: dict[str, Any], label: str) -> tuple[str, str, str]:
    match = _ID.search(str(server.get("id", "")))
    if match is None:
        pytest.fail(f"{label}: example server body without a flexible server id")
    return match[1], match[2], match[3]


SERVER_EXAMPLES = official_server_examples()


def test_the_official_server_examples_are_all_found() -> None:
    labels = {label.split("#")[0] for label, _ in SERVER_EXAMPLES}
    assert {
        "2025-08-01/ServersGet.json",
        "2025-08-01/ServersGetWithPrivateEndpoints.json",
        "2025-08-01/ServersGetWithVnet.json",
        "2025-08-01/ServersListBySubscription.json",
        "2025-08-01/ServersListByResourceGroup.json",
        "2024-08-01/ServerGet.json",
        "2024-08-01/ServerCreateWithDataEncryptionEnabled.json",
        "2024-08-01/ServerCreateWithMicrosoftEntraEnabled.json",
    } <= labels


@pytest.mark.parametrize(
    ("label", "body"), SERVER_EXAMPLES, ids=[label for label, _ in SERVER_EXAMPLES]
)
def test_every_official_server_example_deserialises_into_the_snapshot(
    arm: ArmEmulator, collect: Collect, label: str, body: dict[str, Any]
) -> None:
    subscription, group, name = _example_ids(body, label)
    arm.add_world({"subscriptionId": subscription, "servers": [{"server": body}]})

    collection = collect(subscription, resource_group=group, server_name=name)

    assert collection.issues == ()
    (server,) = collection.section.servers
    assert server.resource == body  # ARM's wire JSON, camelCase, as sent
    assert (server.subscription_id, server.resource_group, server.name) == (
        subscription,
        group,
        body.get("name", name),
    )


def test_every_official_child_example_lands_in_its_snapshot_field(
    arm: ArmEmulator, collect: Collect
) -> None:
    server = example_body("2025-08-01/ServersGet.json")
    arm.add_world(_examples_world(server))

    collection = collect(SUB, resource_group=RG, server_name="exampleserver")

    assert collection.issues == ()
    (collected,) = collection.section.servers
    subset = _values("2025-08-01/ConfigurationsListByServer.subset.json")
    assert collected.parameters is not None
    assert set(collected.parameters) == {c["name"] for c in subset} | {"array_nulls"}
    autovacuum = collected.parameters["autovacuum"]
    assert (autovacuum.value, autovacuum.default_value, autovacuum.data_type) == (
        "on",
        "on",
        "Boolean",
    )
    assert collected.firewall_rules is not None
    assert [(r.name, r.start_ip_address, r.end_ip_address) for r in collected.firewall_rules][
        :2
    ] == [
        ("examplefirewallrule1", "0.0.0.0", "255.255.255.255"),
        ("examplefirewallrule2", "1.0.0.0", "255.0.0.0"),
    ]
    assert (
        len(collected.firewall_rules)
        == 2 + len(_values("2024-08-01/FirewallRuleListByServer.json")) + 1
    )
    assert collected.backups is not None
    kinds = {(b.backup_type, b.source) for b in collected.backups}
    assert ("Full", "Automatic") in kinds
    assert ("Customer On-Demand", "Customer Initiated") in kinds
    assert all(b.completed_time is not None and b.completed_time.tzinfo for b in collected.backups)
    assert collected.databases == ("exampledatabase1", "exampledatabase2")
    assert collected.administrators is not None
    assert {a.principal_type for a in collected.administrators} >= {"User", "Group"}
    assert collected.private_endpoint_connections == tuple(
        _values("2025-08-01/PrivateEndpointConnectionsList.json")
    )
    assert collected.replicas == (SERVER_ID,)
    assert collected.threat_protection_state == "Enabled"
    assert collected.diagnostic_settings == tuple(_values("monitor/listDiagnosticSettings.json"))
    # The monitor examples' alerts watch a VM in another subscription: none covers this server.
    assert collected.metric_alerts == ()


def test_official_examples_evaluate_against_every_policy_without_error(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(_examples_world(example_body("2025-08-01/ServersGet.json")))
    collection = collect(SUB, resource_group=RG, server_name="exampleserver")
    assert collection.issues == ()
    snapshot = assemble("prod", azure=collection.section, issues=collection.issues)
    (server,) = collection.section.servers
    assert server.parameters is not None

    for environment in ("dev", "staging", "uat", "prod"):
        policy = load_policy(policy_path_for(environment, REPO / "policies"))
        report = evaluate(policy, snapshot, {Source.AZURE})
        azure = [f for f in report.findings if f.check.startswith("azure.")]
        assert azure, environment
        for finding in (f for f in azure if f.status is Status.ERROR):
            # No check crashes and nothing is missing from collection; the only ERRORs allowed
            # are for parameters the official 47-parameter subset does not contain.
            assert not finding.message.startswith(f"check {finding.check} failed"), finding
            assert "not collected" not in finding.message, finding
            named = {w.strip("'\",.:;()") for w in finding.message.split()}
            absent = {w for w in named if ("_" in w or "." in w) and w not in server.parameters}
            assert absent, (environment, finding.rule, finding.message)


def test_example_metric_alerts_flatten_their_criteria(arm: ArmEmulator, collect: Collect) -> None:
    server = example_body("2025-08-01/ServersGet.json")
    alerts = _values("monitor/listMetricAlert.json")
    for alert in alerts:  # the same alerts, scoped to this server's resource group
        alert["properties"]["scopes"] = [f"/subscriptions/{SUB}/resourcegroups/{RG.upper()}"]
    arm.add_world({"subscriptionId": SUB, "servers": [{"server": server}], "metricAlerts": alerts})

    (collected,) = collect(SUB, resource_group=RG, server_name="exampleserver").section.servers

    assert collected.metric_alerts is not None
    assert [a.name for a in collected.metric_alerts] == ["highcpu", "mediumcpu"]
    high = collected.metric_alerts[0]
    assert (high.severity, high.enabled) == (3, True)
    (criterion,) = high.criteria
    assert (criterion.operator, criterion.threshold, criterion.time_aggregation) == (
        "GreaterThan",
        80.5,
        "Average",
    )
    assert high.action_groups == (
        official_example("monitor/listMetricAlert.json")["responses"]["200"]["body"]["value"][0][
            "properties"
        ]["actions"][0]["actionGroupId"],
    )
