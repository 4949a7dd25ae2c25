"""Fleet collection: Resource Graph scopes (subscriptions, management group, names), the scope
re-applied to what comes back, only the parts the rules read, shards, and `merge`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.azure.request import Shard
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Source
from engram_audit.model.snapshot import AzureSection
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for
from tests.azure.conftest import TOKEN, Collect
from tests.support.arm_emulator import ArmEmulator, Fault
from tests.support.arm_world import fleet_world, load_world
from tests.support.cli import run_in_process
from tests.support.resource_graph import server_row

pytestmark = pytest.mark.azure

REPO = Path(__file__).resolve().parents[2]
FLEET = load_world("fleet")
SUB = FLEET["subscriptionId"]
OTHER = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"
PROD = {"zep-prod-weu-db", "zep-prod-neu-db"}


def _other_fleet() -> dict[str, Any]:
    """A second subscription with one prod-tagged server."""
    template = copy.deepcopy(load_world("prod-unseen-compliant"))
    template["servers"][0]["server"]["tags"] = {"environment": "prod"}
    return fleet_world(template, OTHER, "rg-other", 1)


def test_several_subscriptions_are_one_resource_graph_query(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())

    collection = collect(None, subscriptions=(SUB, OTHER), tag=("environment", "prod"))

    assert collection.issues == ()
    assert {s.name for s in collection.section.servers} == PROD | {"rg-other-db-0"}
    servers_query, alerts_query = arm.graph_queries()
    assert servers_query["subscriptions"] == [SUB, OTHER]
    assert servers_query["options"]["$top"] == 1000
    assert "flexibleservers" in servers_query["query"]
    assert "metricalerts" in alerts_query["query"]
    # No ARM listing and no GET of a server body: Resource Graph brought them.
    assert arm.requests_matching(r"/flexibleServers(/[^/]+)?$") == []


def test_a_management_group_scope_reaches_its_subscriptions(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    arm.add_management_group("mg-zep", [OTHER])

    collection = collect(None, management_group="mg-zep", tag=("environment", "prod"))

    assert collection.issues == ()
    assert [s.name for s in collection.section.servers] == ["rg-other-db-0"]
    (query, _) = arm.graph_queries()
    assert query["managementGroups"] == ["mg-zep"] and "subscriptions" not in query


def test_several_servers_by_name(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)

    collection = collect(SUB, server_names=("ZEP-DEV-DB", "zep-scratch-db", "no-such-db"))

    assert {s.name for s in collection.section.servers} == {"zep-dev-db", "zep-scratch-db"}
    (query, _) = arm.graph_queries()
    assert "name =~ 'ZEP-DEV-DB' or name =~ 'zep-scratch-db'" in query["query"]


def test_every_scope_filter_is_applied_again_to_what_resource_graph_returns(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    # A hostile or stale row: Resource Graph answers a query on SUB with a server of OTHER.
    stray = dict(next(r for r in arm.world.graph_rows if r["subscriptionId"] == OTHER))
    stray["subscriptionId"] = SUB
    arm.world.graph_rows.append(stray)
    before = len(arm.requests)

    collection = collect(SUB, tag=("environment", "prod"))

    assert {s.name for s in collection.section.servers} == PROD
    (issue,) = collection.issues
    assert "outside that scope: not audited" in issue.reason and OTHER in issue.reason
    assert not any(OTHER in r.path for r in arm.requests[before:])


def test_only_the_parts_the_rules_read_are_requested(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    # The identity may not read firewall rules; no rule reads them here, so nothing is lost.
    arm.inject("/firewallRules$", Fault(status=403, error_code="AuthorizationFailed"))

    collection = collect(
        SUB, tag=("environment", "prod"), parts=frozenset({"azure.server", "azure.parameters"})
    )

    assert collection.issues == ()
    for server in collection.section.servers:
        assert server.parameters is not None
        assert server.firewall_rules is None and server.metric_alerts is None
    assert {r.path.rsplit("/", 1)[-1] for r in arm.requests if r.method == "GET"} == {
        "configurations"
    }
    assert len(arm.graph_queries()) == 1  # no rule reads alerts: no alerts query


GRAPH_PARTS = ("azure.server", "azure.metric_alerts")


def test_the_production_policy_costs_one_read_per_part_per_server(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    parts = plan_for(load_policy(REPO / "policies" / "prod.yaml")).parts
    assert parts is not None
    # Resource Graph brings the server bodies and the metric alerts; every other part the
    # rules read is one ARM read per server, no more.
    per_server = sorted(p for p in parts if p.startswith("azure.") and p not in GRAPH_PARTS)
    assert per_server == [
        "azure.administrators",
        "azure.backups",
        "azure.diagnostic_settings",
        "azure.firewall_rules",
        "azure.parameters",
        "azure.private_endpoint_connections",
        "azure.threat_protection",
    ]

    collection = collect(SUB, tag=("environment", "prod"), parts=parts)

    # ... and one read of the subscription's permissions, since a rule reads metric alerts.
    assert collection.reads_sent == 2 * len(per_server) + 1
    assert collection.graph_queries == 2


def test_resource_graph_and_arm_give_the_same_verdicts(arm: ArmEmulator, collect: Collect) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    body = world["servers"][0]["server"]
    group, name = body["id"].split("/")[4], body["name"]
    policy = load_policy(REPO / "policies" / "prod.yaml")

    def verdicts(**fields: Any) -> list[tuple[str, str, str, str]]:
        collection = collect(world["subscriptionId"], **fields)
        assert collection.issues == ()
        snapshot = assemble("prod", azure=AzureSection(servers=collection.section.servers))
        report = evaluate(policy, snapshot, {Source.AZURE})
        return [(f.rule, f.resource.casefold(), f.status.value, f.actual) for f in report.findings]

    by_arm = verdicts(resource_group=group, server_name=name)
    by_graph = verdicts(server_names=(name,))

    assert by_graph == by_arm


def test_shards_cover_every_server_exactly_once(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    whole = collect(None, subscriptions=(SUB, OTHER), tag=("environment", "prod"))
    ids = [s.id for s in whole.section.servers]

    shards = [
        collect(
            None,
            subscriptions=(OTHER, SUB),
            tag=("environment", "prod"),
            shard=Shard(index, 2),
            parts=frozenset({"azure.server"}),
        )
        for index in (1, 2)
    ]

    taken = [[s.id for s in shard.section.servers] for shard in shards]
    assert sorted(taken[0] + taken[1]) == sorted(ids)
    assert not set(taken[0]) & set(taken[1])
    assert all(shard.issues == () and shard.servers_found == 3 for shard in shards)
    # Ordered by subscription, then id: the first shard takes the lower subscription id.
    assert {i.split("/")[2] for i in taken[0]} == {min(SUB, OTHER)}


def test_shards_merge_into_the_report_of_the_whole_run(arm: ArmEmulator, tmp_path: Path) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    env = {"REQUESTS_CA_BUNDLE": arm.ca_pem, "PIPELINE_ARM_TOKEN": TOKEN}
    common = [
        "check",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--subscription",
        SUB,
        "--subscription",
        OTHER,
        "--tag",
        "environment=prod",
        "--arm-endpoint",
        arm.url,
        "--azure-token-env",
        "PIPELINE_ARM_TOKEN",
        "--format",
        "json",
    ]
    whole = run_in_process(*common, "--output", str(tmp_path / "whole.json"), env=env)
    for index in (1, 2, 3, 4):
        run_in_process(
            *common, "--shard", f"{index}/4", "--output", str(tmp_path / f"s{index}.json"), env=env
        )
    shards = [str(tmp_path / f"s{index}.json") for index in (1, 2, 3, 4)]

    merged = run_in_process(
        "merge", *shards, "--format", "json", "-o", f"sarif:{tmp_path / 'm.sarif'}"
    )

    assert merged.stdout, merged.stderr
    expected = json.loads((tmp_path / "whole.json").read_text())
    got = json.loads(merged.stdout)
    assert merged.returncode == whole.returncode
    assert got["findings"] == expected["findings"]
    assert got["summary"] == expected["summary"]
    assert json.loads((tmp_path / "m.sarif").read_text())["runs"]

    # The same shard twice: refused as a repeated shard before any finding is compared.
    repeated = run_in_process("merge", *shards, shards[1])
    assert repeated.returncode == 2
    assert f"shard 2/4 is given more than once ({shards[1]}, {shards[1]})" in repeated.stderr


def test_the_inventory_maps_subscriptions_management_group_and_servers(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_other_fleet())
    (tmp_path / "engram-audit.yaml").write_text(
        "apiVersion: engram-audit/v1\n"
        "environments:\n"
        "  prod:\n"
        f"    azure: {{subscriptions: [{SUB}, {OTHER}], tag: {{environment: prod}}}}\n"
        "  dev:\n"
        f"    azure: {{subscriptions: [{SUB}], servers: [zep-dev-db, zep-scratch-db]}}\n"
        "    allow_empty: true\n"
    )
    env = {"REQUESTS_CA_BUNDLE": arm.ca_pem, "PIPELINE_ARM_TOKEN": TOKEN}
    common = ["--arm-endpoint", arm.url, "--azure-token-env", "PIPELINE_ARM_TOKEN"]

    result = run_in_process(
        "collect",
        "--all",
        "--sources",
        "azure",
        "--policy-dir",
        str(REPO / "policies"),
        "--output-dir",
        str(tmp_path / "out"),
        *common,
        cwd=tmp_path,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    prod = json.loads((tmp_path / "out" / "prod.json").read_text())
    dev = json.loads((tmp_path / "out" / "dev.json").read_text())
    assert {s["name"] for s in prod["azure"]["servers"]} == PROD | {"rg-other-db-0"}
    assert {s["name"] for s in dev["azure"]["servers"]} == {"zep-dev-db", "zep-scratch-db"}


def test_graph_failures_are_issues_on_the_scope(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    arm.inject(r"/Microsoft.ResourceGraph/resources$", Fault(status=403, error_code="Forbidden"))

    collection = collect(SUB, tag=("environment", "prod"), timeout_seconds=5)

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert issue.resource == f"/subscriptions/{SUB}"
    assert "Resource Graph query of flexible servers" in issue.reason and "403" in issue.reason


def test_resource_graph_rows_are_read_as_the_arm_bodies_they_mirror() -> None:
    body = FLEET["servers"][0]["server"]
    row = server_row(body)

    assert row["type"] == "microsoft.dbforpostgresql/flexibleservers"
    assert row["subscriptionId"] == SUB and row["properties"] == body["properties"]
