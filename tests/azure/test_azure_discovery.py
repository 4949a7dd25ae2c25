"""Finding servers (one, a group, or by tag through Resource Graph), paging, and the read-only,
one-list-call contract."""

from __future__ import annotations

import json

import pytest
import requests

from engram_audit.collectors.azure.graph import GRAPH_API_VERSION
from engram_audit.model.values import resource_id_covers
from tests.azure.conftest import TOKEN, Collect
from tests.support.arm_emulator import ArmEmulator, Fault
from tests.support.arm_world import example_body, load_world

pytestmark = pytest.mark.azure

FLEET = load_world("fleet")
SUB = FLEET["subscriptionId"]
PROD_SERVERS = {"zep-prod-weu-db", "zep-prod-neu-db"}
FLEX = "Microsoft.DBforPostgreSQL/flexibleServers"
ALL_SERVERS = {bundle["server"]["name"] for bundle in FLEET["servers"]}


def test_tag_discovery_audits_the_tagged_servers_and_no_others(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)

    collection = collect(SUB, tag=("environment", "prod"))

    assert collection.issues == ()
    assert {s.name for s in collection.section.servers} == PROD_SERVERS
    # Tags are matched in any case; "production" is another value, not a prefix match.
    assert {s.resource_group for s in collection.section.servers} == {
        "rg-zep-prod-weu",
        "RG-Zep-Prod-NEU",
    }
    untouched = ALL_SERVERS - PROD_SERVERS
    touched = {
        r.path.split("/flexibleServers/")[1].split("/")[0]
        for r in arm.requests
        if "/flexibleServers/" in r.path
    }
    assert touched == PROD_SERVERS
    assert not untouched & touched
    # Discovery is one Resource Graph query: no listing, no per-server GET of the body.
    assert arm.requests_matching(r"/flexibleServers/[^/]+$") == []
    assert arm.requests_matching(r"/flexibleServers$") == []
    (query, _) = arm.graph_queries()  # the servers, then the metric alerts
    assert query["subscriptions"] == [SUB]
    assert "environment" not in query["query"]  # tags are matched here, in any case


def test_tag_discovery_with_no_match_is_an_issue_naming_the_tag(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)

    collection = collect(SUB, tag=("environment", "prdo"))

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (f"/subscriptions/{SUB}", None)
    assert issue.reason.startswith(
        f"no flexible server matched tag environment=prdo in subscription {SUB}: "
        f"5 listed, none with that tag"
    )
    assert "--allow-empty" in issue.reason


def test_an_empty_resource_group_is_an_issue(arm: ArmEmulator, collect: Collect) -> None:
    arm.add_world(FLEET)
    arm.world.add_group(SUB, "rg-empty")

    collection = collect(SUB, resource_group="rg-empty")

    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (f"/subscriptions/{SUB}/resourceGroups/rg-empty", None)
    assert issue.reason.startswith(
        f"no flexible server in resource group rg-empty of subscription {SUB}: ARM listed none"
    )


def test_an_empty_subscription_is_an_issue(arm: ArmEmulator, collect: Collect) -> None:
    empty = "00000000-1111-2222-3333-444444444444"
    arm.world.add_subscription(empty)

    collection = collect(empty, tag=("environment", "prod"))

    (issue,) = collection.issues
    assert issue.resource == f"/subscriptions/{empty}"
    assert issue.reason.startswith(
        f"no flexible server matched tag environment=prod in subscription {empty}: "
        f"Resource Graph listed none"
    )


def test_allow_empty_accepts_an_empty_scope_without_an_issue(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.world.add_group(SUB, "rg-empty")

    by_tag = collect(SUB, tag=("environment", "prdo"), allow_empty=True)
    by_group = collect(SUB, resource_group="rg-empty", allow_empty=True)

    assert by_tag.section.servers == by_group.section.servers == ()
    assert by_tag.issues == by_group.issues == ()


def test_allow_empty_does_not_hide_a_failure_or_a_refused_entry(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)
    arm.inject(r"/Microsoft.ResourceGraph/resources$", Fault(status=403, error_code="Forbidden"))

    failed = collect(SUB, tag=("environment", "prod"), allow_empty=True, timeout_seconds=5)

    (issue,) = failed.issues
    assert "403" in issue.reason

    arm.clear_faults()
    arm.world.add_group(SUB, "rg-empty")
    elsewhere = FLEET["servers"][0]["server"]  # a server of another group
    listing = f"/subscriptions/{SUB}/resourceGroups/rg-empty/providers/{FLEX}"
    arm.world.add_page(listing, None, {"value": [elsewhere]})

    refused = collect(SUB, resource_group="rg-empty", allow_empty=True)

    (issue,) = refused.issues
    assert "outside that scope" in issue.reason
    assert refused.section.servers == ()


def test_a_resource_group_alone_audits_every_server_in_it(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)

    collection = collect(SUB, resource_group="RG-ZEP-DEV")

    assert {s.name for s in collection.section.servers} == {"zep-dev-db", "zep-scratch-db"}


def test_server_lists_are_paged_and_every_page_is_read(arm: ArmEmulator, collect: Collect) -> None:
    arm.world.page_size = 1
    arm.add_world(FLEET)

    collection = collect(SUB, resource_group="rg-zep-dev", tag=("environment", "dev"))

    assert {s.name for s in collection.section.servers} == {"zep-dev-db"}
    listing = arm.requests_matching(r"/resourceGroups/rg-zep-dev/providers/[^/]+/flexibleServers$")
    assert [r.continuation for r in listing] == [False, True]  # two servers, one per page


def test_official_list_pages_pointing_at_the_real_arm_host_are_followed_on_the_emulator(
    arm: ArmEmulator, collect: Collect
) -> None:
    first = example_body("2025-08-01/ServersListByResourceGroup.json")
    assert first["nextLink"].startswith("https://management.azure.com/")
    servers = [s for s in first["value"] if "id" in s]
    later = json.loads(json.dumps(servers[0]).replace("exampleserver1", "exampleserver9"))
    subscription, group = servers[0]["id"].split("/")[2], servers[0]["id"].split("/")[4]
    arm.add_world({"subscriptionId": subscription, "servers": [{"server": s} for s in servers]})
    path = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{FLEX}"
    arm.world.add_pages(path, [first, {"value": [later]}])
    arm.world.add_server({"server": later})

    collection = collect(subscription, resource_group=group)

    assert {s.name for s in collection.section.servers} == {
        "exampleserver1",
        "exampleserver2",
        "exampleserver9",
    }
    listing = arm.requests_matching(f"{path}$")
    assert [r.query.get("$skiptoken") for r in listing] == [None, ["skiptoken"]]


def test_parameters_come_from_one_paged_list_call_never_one_get_each(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.world.page_size = 20
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    names = {c["name"] for c in world["servers"][0]["configurations"]}
    assert len(names) > 40

    (server,) = collect(
        world["subscriptionId"],
        resource_group="rg-engram-prod-euw",
        server_name="engram-zep-prod-eu2",
    ).section.servers

    assert server.parameters is not None and set(server.parameters) == names
    calls = arm.requests_matching("/configurations")
    assert [r.continuation for r in calls] == [False] + [True] * ((len(names) - 1) // 20)
    assert all(r.path.lower().endswith("/configurations") for r in calls)


def test_a_full_collection_sends_only_gets_with_the_token(
    arm: ArmEmulator, collect: Collect
) -> None:
    arm.add_world(FLEET)

    collection = collect(SUB, tag=("environment", "prod"))

    assert len(collection.section.servers) == 2
    assert arm.methods() == {"GET", "POST"}
    assert {r.path for r in arm.requests if r.method == "POST"} == {
        "/providers/Microsoft.ResourceGraph/resources"
    }
    assert arm.violations == []
    assert all(r.authorized for r in arm.requests)
    # 9 parts per server; one Resource Graph query for the servers, one for the alerts, and the
    # subscription's permissions (may the identity read every alert Resource Graph holds?)
    assert collection.requests_sent == len(arm.requests) == 2 * 9 + 2 + 1
    assert collection.graph_queries == 2 and collection.reads_sent == 2 * 9 + 1
    assert len(arm.requests_matching("/Microsoft.Authorization/permissions$")) == 1
    assert arm.requests_matching("/metricAlerts$") == []


def test_graph_queries_are_the_post_the_resourcegraph_sdk_builds(
    arm: ArmEmulator, collect: Collect
) -> None:
    # The rows are read as wire JSON through the pipeline (graph.query_rows), not through
    # ResourceGraphClient.resources: the request must still be the one that method sends.
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions
    from azure.mgmt.resourcegraph.operations._resource_graph_client_operations import (
        build_resources_request,
    )

    sdk_request = build_resources_request()
    arm.add_world(FLEET)

    collect(SUB, tag=("environment", "prod"))

    posts = [r for r in arm.requests if r.method == "POST"]
    assert len(posts) == 2
    assert {r.path for r in posts} == {sdk_request.url.split("?")[0]}
    assert {r.api_version for r in posts} == {GRAPH_API_VERSION}
    assert f"api-version={GRAPH_API_VERSION}" in sdk_request.url
    servers, _ = arm.graph_queries()
    expected = QueryRequest(
        query=servers["query"],
        subscriptions=[SUB],
        options=QueryRequestOptions(top=1000, result_format="objectArray"),
    ).serialize()
    assert servers == expected


def test_the_emulator_refuses_and_records_anything_but_get(arm: ArmEmulator) -> None:
    arm.add_world(FLEET)
    url = f"{arm.url}/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/register"

    answer = requests.post(
        url, json={}, headers={"Authorization": f"Bearer {TOKEN}"}, verify=arm.ca_pem, timeout=10
    )

    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "MethodNotAllowed"
    assert arm.violations == [
        f"POST /subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/register"
    ]


def test_metric_alerts_are_kept_when_their_scope_covers_the_server(
    arm: ArmEmulator, collect: Collect
) -> None:
    world = load_world("prod-unseen-compliant")
    sub = world["subscriptionId"]
    server_id = world["servers"][0]["server"]["id"]
    group_id = server_id.split("/providers/")[0]
    template = world["metricAlerts"][0]
    scopes = {
        "subscription": f"/SUBSCRIPTIONS/{sub.upper()}",
        "group": group_id.replace("resourcegroups", "resourceGroups").upper() + "/",
        "server": server_id.lower(),
        "sibling-with-same-prefix": server_id[:-1],
        "other-group": f"/subscriptions/{sub}/resourceGroups/rg-other",
        "other-subscription": "/subscriptions/00000000-0000-0000-0000-000000000000",
    }
    alerts = []
    for label, scope in scopes.items():
        alert = json.loads(json.dumps(template))
        alert["id"], alert["name"] = f"{template['id']}-{label}", label
        alert["properties"]["scopes"] = [scope]
        alerts.append(alert)
    world["metricAlerts"] = alerts
    arm.add_world(world)

    (server,) = collect(sub, resource_group="rg-engram-prod-euw").section.servers

    assert server.metric_alerts is not None
    assert [a.name for a in server.metric_alerts] == ["subscription", "group", "server"]
    assert [a.name for a in server.metric_alerts] == [
        label for label, scope in scopes.items() if resource_id_covers(scope, server.id)
    ]
