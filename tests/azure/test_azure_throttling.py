"""ARM's read throttling and Resource Graph, as the emulator models them, through the real SDKs;
and the collector's pacing under them: zero 429 answers. Small buckets keep these quick; no
assertion is about time (the benchmark measures speed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import RetryPolicy
from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from engram_audit.collectors.azure.clients import EnvironmentToken
from engram_audit.collectors.azure.collector import AzureRequest, collect_azure
from engram_audit.collectors.azure.graph import alerts_query, servers_query
from tests.azure.conftest import TOKEN, TOKEN_VARIABLE
from tests.support.arm_emulator import ArmEmulator, TlsMaterial
from tests.support.arm_world import fleet_world, load_world
from tests.support.resource_graph import UnsupportedQuery, parse, server_row

pytestmark = pytest.mark.azure

SUB = "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f"
OTHER = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"
SERVER_PATH = f"/subscriptions/{SUB}/resourceGroups/fleet/providers/Microsoft.DBforPostgreSQL"


def _template() -> dict[str, Any]:
    template = load_world("prod-unseen-compliant")
    template["servers"][0]["server"]["tags"] = {"fleet": "t"}
    return template


@pytest.fixture
def small(tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmEmulator]:
    """An emulator with a 10-read bucket (refilled at ARM's 25/s) and a 2-query graph quota."""
    with ArmEmulator(
        token=TOKEN,
        tls=tls,
        read_capacity=10,
        read_refill_per_second=25.0,
        graph_quota=2,
        graph_window_seconds=1.0,
        page_size=1000,
    ) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_pem)
        monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.delenv(proxy, raising=False)
        yield emulator


def _sdk_kwargs(arm: ArmEmulator) -> dict[str, Any]:
    # The SDK's own pipeline, retries off, so each answer is seen as ARM gave it.
    return {
        "base_url": arm.url,
        "connection_verify": arm.ca_pem,
        "retry_policy": RetryPolicy(retry_total=0),
        "credential_scopes": ["https://management.azure.com/.default"],
    }


# --- the emulator, through the real SDKs -------------------------------------------------------


def test_every_answer_carries_the_remaining_reads_and_an_empty_bucket_answers_429(
    tls: TlsMaterial,
) -> None:
    # A slow refill, so the ten reads below cannot earn a token back while they run.
    with ArmEmulator(token=TOKEN, tls=tls, read_capacity=10, read_refill_per_second=0.5) as small:
        _bucket_answers(small)


def _bucket_answers(small: ArmEmulator) -> None:
    small.add_world(fleet_world(_template(), SUB, "fleet", 1))
    client = PostgreSQLManagementClient(EnvironmentToken(TOKEN), SUB, **_sdk_kwargs(small))
    seen: list[str] = []

    def hook(response: Any) -> None:
        seen.append(response.http_response.headers["x-ms-ratelimit-remaining-subscription-reads"])

    for _ in range(10):
        client.servers.get("fleet", "fleet-db-0", raw_response_hook=hook)
    with pytest.raises(HttpResponseError) as throttled:
        client.servers.get("fleet", "fleet-db-0")

    assert seen == [str(n) for n in range(9, -1, -1)]
    assert throttled.value.status_code == 429
    response: Any = throttled.value.response
    headers = response.headers
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert int(headers["Retry-After"]) >= 1
    # Another subscription (and another principal) has its own bucket.
    small.world.add_subscription(OTHER)
    other = PostgreSQLManagementClient(EnvironmentToken(TOKEN), OTHER, **_sdk_kwargs(small))
    assert list(other.servers.list_by_subscription()) == []
    assert small.stats()["throttled"] == 1


def test_resource_graph_pages_at_1000_rows_with_skip_token_through_the_sdk(
    small: ArmEmulator,
) -> None:
    body = fleet_world(_template(), SUB, "fleet", 1)["servers"][0]["server"]
    for index in range(1205):
        row = server_row({**body, "id": body["id"].replace("fleet-db-0", f"db-{index:04d}")})
        small.world.graph_rows.append({**row, "name": f"db-{index:04d}"})
    small.world.add_subscription(SUB)
    client = ResourceGraphClient(EnvironmentToken(TOKEN), **_sdk_kwargs(small))
    query = servers_query(AzureRequest(SUB, tag=("fleet", "t")))

    first = client.resources(
        QueryRequest(query=query, subscriptions=[SUB], options=QueryRequestOptions(top=5000))
    )
    second = client.resources(
        QueryRequest(
            query=query,
            subscriptions=[SUB],
            options=QueryRequestOptions(skip_token=first.skip_token),
        )
    )

    assert (first.total_records, first.count, len(first.data)) == (1205, 1000, 1000)
    assert first.skip_token and second.skip_token is None
    assert len(second.data) == 205
    rows: list[Any] = [*first.data, *second.data]
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids, key=str.casefold) and len(set(ids)) == 1205
    assert set(rows[0]) == {
        "id",
        "name",
        "type",
        "location",
        "tags",
        "sku",
        "identity",
        "properties",
    }


def test_resource_graph_quota_headers_and_429_through_the_sdk(small: ArmEmulator) -> None:
    small.world.add_subscription(SUB)
    client = ResourceGraphClient(EnvironmentToken(TOKEN), **_sdk_kwargs(small))
    request = QueryRequest(query=alerts_query(), subscriptions=[SUB])
    quota: list[tuple[str, str]] = []

    def hook(response: Any) -> None:
        headers = response.http_response.headers
        quota.append(
            (headers["x-ms-user-quota-remaining"], headers["x-ms-user-quota-resets-after"])
        )

    client.resources(request, raw_response_hook=hook)
    client.resources(request, raw_response_hook=hook)
    with pytest.raises(HttpResponseError) as throttled:
        client.resources(request)

    assert [remaining for remaining, _ in quota] == ["1", "0"]
    assert all(resets == "00:00:01" for _, resets in quota)
    assert throttled.value.status_code == 429
    response: Any = throttled.value.response
    assert response.headers["x-ms-user-quota-remaining"] == "0"


@pytest.mark.parametrize(
    "query",
    [
        "resources | take 1",
        "resources | where type =~ 'x' | project name | order by id asc",  # no id
        "resources | where tags['a'] =~ 'b' | project id | order by id asc",
        "securityresources | where type =~ 'x' | project id | order by id asc",
    ],
)
def test_the_emulator_refuses_kql_the_tool_does_not_send(query: str) -> None:
    with pytest.raises(UnsupportedQuery):
        parse(query)


# --- the collector under throttling ------------------------------------------------------------


def test_a_fleet_beyond_the_bucket_is_collected_without_a_single_429(small: ArmEmulator) -> None:
    small.add_world(fleet_world(_template(), SUB, "fleet", 6))
    small.add_world(fleet_world(_template(), OTHER, "fleet", 3))

    collection = collect_azure(
        AzureRequest(
            subscriptions=(SUB, OTHER),
            tag=("fleet", "t"),
            arm_endpoint=small.url,
            token_env=TOKEN_VARIABLE,
            timeout_seconds=60,
            concurrency=8,
        ),
        show_progress=False,
        parts=frozenset(
            {"azure.server", "azure.parameters", "azure.backups", "azure.metric_alerts"}
        ),
    )

    assert collection.issues == ()
    assert len(collection.section.servers) == 9
    stats = small.stats()
    assert stats["throttled"] == stats["graph_throttled"] == 0
    # Two reads a server and one permissions read per subscription, over a 10-read bucket: the
    # pacer waited instead of being throttled.
    assert collection.reads_sent == stats["reads"] == 18 + 2
    assert collection.throttled == 0 and collection.budget_wait_seconds > 0
    assert collection.graph_queries == 2


def test_a_throttled_answer_is_waited_out_once_for_the_whole_subscription(
    small: ArmEmulator,
) -> None:
    """Another client of the same principal empties the bucket mid-run: the 429s it causes are
    retried after Retry-After, and every server is still read."""
    small.add_world(fleet_world(_template(), SUB, "fleet", 4))
    for _ in range(10):  # someone else spends the whole bucket first
        assert small.throttle is not None
        small.throttle.take(SUB, f"Bearer {TOKEN}")

    collection = collect_azure(
        AzureRequest(
            SUB,
            resource_group="fleet",
            arm_endpoint=small.url,
            token_env=TOKEN_VARIABLE,
            timeout_seconds=60,
        ),
        show_progress=False,
        parts=frozenset({"azure.server", "azure.firewall_rules"}),
    )

    assert collection.issues == ()
    assert {s.firewall_rules for s in collection.section.servers} == {()}
    # Only the probe met the empty bucket: the pacer held everything else until Retry-After.
    assert small.stats()["throttled"] == 1
