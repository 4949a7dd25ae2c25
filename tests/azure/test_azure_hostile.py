"""A hostile ARM (or a proxy in front of it): nothing it says sends a request elsewhere or writes.

- A ``nextLink`` naming another scheme, host or port is refused before anything is sent (not
  even a TCP connection reaches that host), for the SDK's own paging and for the raw readers,
  and becomes a collection issue naming the host.
- The pipeline refuses every method but GET (and POST to exactly the Resource Graph query path)
  before the request leaves: a request forged through the same pipeline never reaches ARM.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import requests
from azure.core.rest import HttpRequest

from engram_audit.collectors.azure.clients import ArmClients, build_credential, resolve_target
from engram_audit.collectors.azure.collector import AzureCollection
from engram_audit.collectors.azure.graph import alerts_query
from engram_audit.collectors.azure.pipeline import Budget, RequestRefused
from tests.azure.conftest import TOKEN_VARIABLE, Collect
from tests.support.arm_emulator import ArmEmulator, Fault, ForeignHost
from tests.support.arm_world import load_world

pytestmark = pytest.mark.azure

WORLD = load_world("prod-unseen-compliant")
SUB = WORLD["subscriptionId"]
GROUP = "rg-engram-prod-euw"
NAME = "engram-zep-prod-eu2"
SERVER_ID = WORLD["servers"][0]["server"]["id"]
FLEX = "/providers/Microsoft.DBforPostgreSQL/flexibleServers"


@pytest.fixture
def foreign() -> Iterator[ForeignHost]:
    with ForeignHost() as host:
        yield host


@pytest.fixture
def world(arm: ArmEmulator) -> ArmEmulator:
    arm.add_world(WORLD)
    return arm


def _port(arm: ArmEmulator) -> int:
    return int(arm.url.rsplit(":", 1)[1])


# (label, nextLink origin, how the issue shows the refused origin); {foreign} and {arm} are ports
ELSEWHERE = [
    ("another-port", "https://127.0.0.1:{foreign}", "https://127.0.0.1:{foreign}"),
    ("another-host-name", "https://localhost:{arm}", "https://localhost:{arm}"),
    ("plain-http", "http://127.0.0.1:{arm}", "http://127.0.0.1:{arm}"),
    ("user-information", "https://attacker@127.0.0.1:{arm}", "'https://attacker@127.0.0.1:{arm}"),
]


@pytest.mark.parametrize(("label", "origin", "shown"), ELSEWHERE, ids=[e[0] for e in ELSEWHERE])
def test_a_next_link_elsewhere_in_sdk_paging_is_refused_and_named(
    world: ArmEmulator,
    collect: Collect,
    foreign: ForeignHost,
    label: str,
    origin: str,
    shown: str,
) -> None:
    ports = {"foreign": foreign.port, "arm": _port(world)}
    link = (
        f"{origin.format(**ports)}{SERVER_ID}/configurations"
        f"?api-version=2025-08-01&$skiptoken=page1"
    )
    world.hostile_next_link("/configurations$", link)

    collection = collect(SUB, resource_group=GROUP, server_name=NAME)

    (server,) = collection.section.servers
    assert server.parameters is None  # a partial list is not kept as if it were whole
    assert server.backups is not None and server.firewall_rules is not None
    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (SERVER_ID, "parameters")
    assert shown.format(**ports) in issue.reason
    assert "nothing was sent there" in issue.reason
    assert foreign.connections == 0
    # The first page was read; the link was not followed, not even back to the emulator.
    assert [r.continuation for r in world.requests_matching("/configurations$")] == [False]
    assert world.violations == []


def test_a_next_link_elsewhere_in_a_raw_list_is_refused_and_named(
    world: ArmEmulator, collect: Collect, foreign: ForeignHost
) -> None:
    alerts = f"/subscriptions/{SUB}/providers/Microsoft.Insights/metricAlerts"
    world.hostile_next_link("/metricAlerts$", f"{foreign.origin}{alerts}?$skiptoken=x")
    world.hostile_next_link("/diagnosticSettings$", f"{foreign.origin}/steal?$skiptoken=y")

    collection = collect(SUB, resource_group=GROUP, server_name=NAME)

    (server,) = collection.section.servers
    assert server.metric_alerts is None and server.diagnostic_settings is None
    assert server.parameters is not None
    assert {issue.part for issue in collection.issues} == {"metric_alerts", "diagnostic_settings"}
    for issue in collection.issues:
        assert issue.resource == SERVER_ID
        assert f"https://127.0.0.1:{foreign.port}" in issue.reason
    assert foreign.connections == 0
    assert len(world.requests_matching("/metricAlerts$")) == 1


def test_a_next_link_elsewhere_in_discovery_fails_discovery_not_silently(
    arm: ArmEmulator, collect: Collect, foreign: ForeignHost
) -> None:
    fleet = load_world("fleet")
    arm.add_world(fleet)
    sub = fleet["subscriptionId"]
    group = f"/subscriptions/{sub}/resourceGroups/rg-zep-dev"
    arm.hostile_next_link(f"{group}{FLEX}$", f"{foreign.origin}{group}{FLEX}?$skiptoken=2")

    collection = collect(sub, resource_group="rg-zep-dev")

    # Servers on page one are not audited as if the list were complete.
    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (group, None)
    assert f"https://127.0.0.1:{foreign.port}" in issue.reason
    assert foreign.connections == 0
    assert arm.requests_matching("/flexibleServers/") == []


def _discover_with_graph_answering(
    arm: ArmEmulator, collect: Collect, answer: object
) -> tuple[AzureCollection, str]:
    """Tag discovery of the fleet while Resource Graph answers 200 with ``answer``; with
    --allow-empty, which accepts a scope with no servers: a broken page is not such a scope."""
    fleet = load_world("fleet")
    arm.add_world(fleet)
    sub = fleet["subscriptionId"]
    arm.inject("/providers/Microsoft.ResourceGraph/resources$", Fault(answer=answer))
    return collect(sub, tag=("environment", "prod"), allow_empty=True), sub


@pytest.mark.parametrize(
    "answer",
    [[], "rows", {}, {"data": None}, {"data": {"id": "x"}}, {"data": [["not", "a", "row"]]}],
    ids=["a-list", "a-string", "no-data", "null-data", "data-not-a-list", "a-row-not-an-object"],
)
def test_a_graph_answer_that_is_not_a_page_fails_discovery_even_where_empty_is_allowed(
    arm: ArmEmulator, collect: Collect, answer: object
) -> None:
    collection, sub = _discover_with_graph_answering(arm, collect, answer)

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert issue.resource == f"/subscriptions/{sub}"
    assert "unreadable answer: Resource Graph's answer" in issue.reason, issue.reason


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            {"data": [], "totalRecords": 3, "resultTruncated": "false"},
            "gave 0 of 3 rows and no $skipToken",
        ),
        (
            {"data": [], "totalRecords": 0, "resultTruncated": "false", "$skipToken": "again"},
            "leads back to a page already read",
        ),
    ],
    ids=["fewer-rows-than-total", "a-skip-token-loop"],
)
def test_a_graph_answer_short_of_its_total_or_paging_in_a_loop_fails_discovery(
    arm: ArmEmulator, collect: Collect, answer: object, said: str
) -> None:
    collection, _ = _discover_with_graph_answering(arm, collect, answer)

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert said in issue.reason, issue.reason
    assert len(arm.graph_queries()) <= 2


def test_a_next_link_back_to_a_page_already_read_fails_the_part_not_the_run(
    world: ArmEmulator, collect: Collect
) -> None:
    path = f"{SERVER_ID}/firewallRules"
    loop = {"value": [], "nextLink": f"{world.url}{path}?api-version=2025-08-01&page=2"}
    world.inject("/firewallRules$", Fault(answer=loop))

    collection = collect(SUB, resource_group=GROUP, server_name=NAME)

    (issue,) = collection.issues
    assert issue.part == "firewall_rules"
    assert "link back to a page already read" in issue.reason
    assert len(world.requests_matching("/firewallRules$")) == 2


# --- methods: the pipeline refuses anything but a read before it leaves -------------------------


@pytest.fixture
def clients(arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmClients]:
    target = resolve_target("AzureCloud", arm.url)
    credential, _ = build_credential(TOKEN_VARIABLE, target.authority)
    built = ArmClients(
        target=target,
        credential=credential,
        budget=Budget(30),
        concurrency=1,
        verify=arm.ca_pem,
    )
    try:
        yield built
    finally:
        built.close()


REFUSED = [
    ("POST", f"/subscriptions/{SUB}/providers/Microsoft.DBforPostgreSQL/register"),
    ("PUT", f"{SERVER_ID}"),
    ("PATCH", f"{SERVER_ID}"),
    ("DELETE", f"{SERVER_ID}/firewallRules/AllowAll"),
    ("HEAD", f"{SERVER_ID}"),
    ("OPTIONS", f"{SERVER_ID}"),
    ("get", f"{SERVER_ID}"),  # methods are case-sensitive: "get" is not GET
    ("POST", f"{SERVER_ID}/restart"),
    ("POST", "/providers/microsoft.resourcegraph/resources"),  # "exactly" includes the case
    ("POST", "/providers/Microsoft.ResourceGraph/resources/x"),
    ("POST", "/subscriptions/x/providers/Microsoft.ResourceGraph/resources"),
]


@pytest.mark.parametrize(
    ("method", "path"),
    REFUSED,
    ids=[f"{m}-{p.rsplit('/', 2)[-2]}-{p.rsplit('/', 1)[-1]}" for m, p in REFUSED],
)
def test_a_forged_write_is_refused_before_it_leaves(
    arm: ArmEmulator, clients: ArmClients, method: str, path: str
) -> None:
    request = HttpRequest(method, f"{arm.url}{path}", params={"api-version": "2025-08-01"})

    with pytest.raises(RequestRefused) as refused:
        clients.postgres(SUB).send_request(request)

    assert f"refused to send {method}" in str(refused.value)
    assert arm.requests == [] and arm.violations == []
    assert clients.counter.count == 0


def test_a_forged_get_to_another_host_is_refused_before_connecting(
    arm: ArmEmulator, clients: ArmClients, foreign: ForeignHost
) -> None:
    with pytest.raises(RequestRefused, match=f"https://127.0.0.1:{foreign.port}"):
        clients.postgres(SUB).send_request(HttpRequest("GET", f"{foreign.origin}{SERVER_ID}"))

    assert foreign.connections == 0
    assert arm.requests == []


def test_reads_pass_the_guard_and_the_emulator_still_refuses_any_write(
    arm: ArmEmulator, clients: ArmClients
) -> None:
    arm.add_world(WORLD)
    graph = "/providers/Microsoft.ResourceGraph/resources"

    read = clients.postgres(SUB).send_request(
        HttpRequest("GET", f"{arm.url}{SERVER_ID}", params={"api-version": "2025-08-01"})
    )
    query = clients.postgres(SUB).send_request(
        HttpRequest(
            "POST",
            f"{arm.url}{graph}",
            params={"api-version": "2021-03-01"},
            json={"subscriptions": [SUB], "query": alerts_query()},
        )
    )
    write = clients.postgres(SUB).send_request(
        HttpRequest("GET", f"{arm.url}{SERVER_ID}", params={"api-version": "2025-08-01"})
    )

    assert read.status_code == write.status_code == 200
    # The one POST the guard lets out is a Resource Graph query: the emulator answers it.
    assert query.status_code == 200 and "data" in query.json()
    assert [(r.method, r.path) for r in arm.requests] == [
        ("GET", SERVER_ID),
        ("POST", graph),
        ("GET", SERVER_ID),
    ]
    assert arm.violations == []
    # ... and still refuses any other POST
    response = requests.post(
        f"{arm.url}{SERVER_ID}/restart", headers={"Authorization": "Bearer x"}, verify=arm.ca_pem
    )
    assert response.status_code == 405 and arm.violations == [f"POST {SERVER_ID}/restart"]


# --- identity: a server is what was requested or what its id says, never its body's name -------


def test_a_listed_body_whose_name_disagrees_with_its_id_does_not_redirect_child_reads(
    arm: ArmEmulator, collect: Collect
) -> None:
    fleet = copy.deepcopy(load_world("fleet"))
    sub = fleet["subscriptionId"]
    (bundle,) = [b for b in fleet["servers"] if b["server"]["name"] == "zep-prod-weu-db"]
    # The replica in the same group is out of scope (tagged "production"); the body points at it.
    bundle["server"]["name"] = "zep-prod-weu-replica"
    arm.add_world(fleet)

    collection = collect(sub, tag=("environment", "prod"))

    assert collection.issues == ()
    servers = {s.name: s for s in collection.section.servers}
    assert set(servers) == {"zep-prod-weu-db", "zep-prod-neu-db"}
    weu = servers["zep-prod-weu-db"]
    assert weu.id == bundle["server"]["id"] and weu.resource_group == "rg-zep-prod-weu"
    assert weu.resource["name"] == "zep-prod-weu-replica"  # kept as data, as ARM sent it
    assert arm.requests_matching("/flexibleServers/zep-prod-weu-replica") == []
    assert len(arm.requests_matching("/flexibleServers/zep-prod-weu-db/")) == 9


def test_a_got_body_whose_name_disagrees_is_still_the_requested_server(
    world: ArmEmulator, collect: Collect
) -> None:
    body = {**WORLD["servers"][0]["server"], "name": "some-other-db"}
    world.world.add_page(SERVER_ID, None, body)

    collection = collect(SUB, resource_group=GROUP, server_name=NAME)

    (server,) = collection.section.servers
    assert collection.issues == ()
    assert (server.id, server.name) == (SERVER_ID, NAME)
    assert world.requests_matching("/some-other-db") == []


def test_a_got_body_naming_another_server_is_not_audited_as_the_requested_one(
    world: ArmEmulator, collect: Collect
) -> None:
    other = SERVER_ID.rsplit("/", 1)[0] + "/zep-other-db"
    body = {**WORLD["servers"][0]["server"], "id": other, "name": "zep-other-db"}
    world.world.add_page(SERVER_ID, None, body)

    collection = collect(SUB, resource_group=GROUP, server_name=NAME)

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert issue.part is None and issue.resource.casefold() == SERVER_ID.casefold()
    assert "with the body of another resource" in issue.reason and other in issue.reason
    # The server body itself, and not one of its parts.
    assert _server_reads(world) == [SERVER_ID.casefold()]


HOSTILE_IDS = [
    (
        "another-subscription",
        f"/subscriptions/{'1' * 8}-1111-1111-1111-{'1' * 12}/resourceGroups/{GROUP}{FLEX}/{NAME}",
        "outside that scope",
    ),
    (
        "another-group",
        f"/subscriptions/{SUB}/resourceGroups/rg-elsewhere{FLEX}/{NAME}",
        "outside that scope",
    ),
    (
        "not-a-flexible-server",
        f"/subscriptions/{SUB}/resourceGroups/{GROUP}"
        f"/providers/Microsoft.Storage/storageAccounts/zepdata",
        "not a flexible server id",
    ),
    (
        "dot-dot",
        f"/subscriptions/{SUB}/resourceGroups/{GROUP}{FLEX}/..",
        "not a flexible server id",
    ),
    (
        "query",
        f"/subscriptions/{SUB}/resourceGroups/{GROUP}{FLEX}/x?a=b",
        "not a flexible server id",
    ),
    ("no-id", None, "not a flexible server id"),
]


@pytest.mark.parametrize(
    ("label", "hostile_id", "reason"), HOSTILE_IDS, ids=[h[0] for h in HOSTILE_IDS]
)
def test_a_listed_id_outside_the_scope_is_an_issue_and_never_read(
    world: ArmEmulator, collect: Collect, label: str, hostile_id: str | None, reason: str
) -> None:
    real = WORLD["servers"][0]["server"]
    hostile = {key: value for key, value in real.items() if key != "id"}
    if hostile_id is not None:
        hostile["id"] = hostile_id
    listing = f"/subscriptions/{SUB}/resourceGroups/{GROUP}{FLEX}"
    world.world.add_page(listing, None, {"value": [real, hostile]})

    collection = collect(SUB, resource_group=GROUP)

    assert [s.id for s in collection.section.servers] == [SERVER_ID]
    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (f"/subscriptions/{SUB}/resourceGroups/{GROUP}", None)
    assert reason in issue.reason and "not audited" in issue.reason
    read = _server_reads(world)
    assert len(read) == 9  # the real server's parts, and nothing else
    assert all(path.startswith(SERVER_ID.casefold() + "/") for path in read)


def _server_reads(arm: ArmEmulator) -> list[str]:
    return [r.path.casefold() for r in arm.requests if "/flexibleservers/" in r.path.casefold()]
