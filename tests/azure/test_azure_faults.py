"""Each fault ARM can throw gives the documented collection issue, never a crash or a gap.

A fault on the server itself leaves no server and an issue with ``part=None``; a fault on a
part leaves that ``AzureServer`` field ``None`` with an issue naming it, the rest collected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from engram_audit.collectors.azure import clients
from engram_audit.collectors.azure.errors import AzureCollectionError
from engram_audit.model import Source
from engram_audit.model.snapshot import AzureServer, CollectionIssue
from tests.azure.conftest import TOKEN, TOKEN_VARIABLE, Collect
from tests.support.arm_emulator import ArmEmulator, Fault
from tests.support.arm_world import load_world

pytestmark = pytest.mark.azure

WORLD = load_world("prod-unseen-compliant")
SUB = WORLD["subscriptionId"]
GROUP = "RG-Engram-Prod-EUW"
NAME = "engram-zep-prod-eu2"
SERVER_ID = WORLD["servers"][0]["server"]["id"]
FLEX = "Microsoft.DBforPostgreSQL/flexibleServers"


def _collect_one(
    collect: Collect, **fields: Any
) -> tuple[AzureServer | None, list[CollectionIssue]]:
    collection = collect(SUB, resource_group=GROUP, server_name=NAME, **fields)
    assert all(issue.source is Source.AZURE for issue in collection.issues)
    servers = collection.section.servers
    assert len(servers) <= 1
    return (servers[0] if servers else None), list(collection.issues)


@pytest.fixture
def world(arm: ArmEmulator) -> ArmEmulator:
    arm.add_world(WORLD)
    return arm


PART_FAULTS = [
    ("/configurations$", "parameters", f"{FLEX}/configurations/read"),
    ("/firewallRules$", "firewall_rules", f"{FLEX}/firewallRules/read"),
    ("/backups$", "backups", f"{FLEX}/backups/read"),
    ("/databases$", "databases", f"{FLEX}/databases/read"),
    ("/administrators$", "administrators", f"{FLEX}/administrators/read"),
    (
        "/privateEndpointConnections$",
        "private_endpoint_connections",
        f"{FLEX}/privateEndpointConnections/read",
    ),
    ("/replicas$", "replicas", f"{FLEX}/replicas/read"),
    (
        "/advancedThreatProtectionSettings$",
        "threat_protection_state",
        f"{FLEX}/advancedThreatProtectionSettings/read",
    ),
    ("/diagnosticSettings$", "diagnostic_settings", "Microsoft.Insights/diagnosticSettings/read"),
]


@pytest.mark.parametrize(
    ("path", "part", "permission"), PART_FAULTS, ids=[p[1] for p in PART_FAULTS]
)
def test_403_on_a_part_names_the_missing_permission_and_keeps_the_rest(
    world: ArmEmulator, collect: Collect, path: str, part: str, permission: str
) -> None:
    world.inject(path, Fault(status=403, error_code="AuthorizationFailed"))

    server, issues = _collect_one(collect)

    assert server is not None
    (issue,) = issues
    assert (issue.resource, issue.part) == (SERVER_ID, part)
    assert "403" in issue.reason
    assert permission in issue.reason
    assert SERVER_ID in issue.reason
    assert getattr(server, part) is None
    others = [p for _, p, _ in PART_FAULTS if p != part] + ["metric_alerts"]
    assert all(getattr(server, other) is not None for other in others)


def test_403_on_metric_alerts_is_an_issue_on_every_server(
    world: ArmEmulator, collect: Collect
) -> None:
    world.inject("/metricAlerts$", Fault(status=403, error_code="AuthorizationFailed"))

    server, issues = _collect_one(collect)

    assert server is not None and server.metric_alerts is None
    (issue,) = issues
    assert (issue.resource, issue.part) == (SERVER_ID, "metric_alerts")
    assert "Microsoft.Insights/metricAlerts/read" in issue.reason


def test_401_on_the_server_is_an_issue_for_the_whole_server(
    world: ArmEmulator, collect: Collect
) -> None:
    world.inject(f"/flexibleServers/{NAME}$", Fault(status=401))

    server, issues = _collect_one(collect)

    assert server is None
    (issue,) = issues
    assert issue.part is None
    assert issue.resource.casefold() == SERVER_ID.casefold()
    assert "401" in issue.reason
    assert f"{FLEX}/read" in issue.reason


def test_a_rejected_token_is_reported_without_showing_it(
    world: ArmEmulator, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-right-token-0123456789"
    monkeypatch.setenv(TOKEN_VARIABLE, wrong)

    server, issues = _collect_one(collect)

    assert server is None
    assert [i.part for i in issues] == [None]
    assert "401" in issues[0].reason
    assert wrong not in issues[0].reason
    assert all(not r.authorized for r in world.requests)


def test_an_arm_message_echoing_the_token_is_scrubbed(world: ArmEmulator, collect: Collect) -> None:
    world.inject("/backups$", Fault(status=403, message=f"token {TOKEN} lacks permission"))

    _, issues = _collect_one(collect)

    (issue,) = issues
    assert TOKEN not in issue.reason
    assert "***" in issue.reason


def test_a_missing_server_is_a_clear_issue(world: ArmEmulator, collect: Collect) -> None:
    collection = collect(SUB, resource_group=GROUP, server_name="no-such-server")

    assert collection.section.servers == ()
    (issue,) = collection.issues
    assert issue.part is None
    assert issue.resource.endswith("/flexibleServers/no-such-server")
    assert issue.reason == (
        f"server no-such-server not found in resource group {GROUP} of subscription {SUB}"
    )


def test_a_missing_resource_group_is_a_clear_issue(world: ArmEmulator, collect: Collect) -> None:
    collection = collect(SUB, resource_group="rg-gone", server_name=NAME)

    (issue,) = collection.issues
    assert (issue.resource, issue.part) == (f"/subscriptions/{SUB}/resourceGroups/rg-gone", None)
    assert issue.reason == f"resource group rg-gone not found in subscription {SUB}"
    assert collection.section.servers == ()


def test_a_missing_resource_group_in_discovery_is_a_clear_issue(
    world: ArmEmulator, collect: Collect
) -> None:
    collection = collect(SUB, resource_group="rg-gone")

    assert [(i.resource, i.part) for i in collection.issues] == [
        (f"/subscriptions/{SUB}/resourceGroups/rg-gone", None)
    ]


def test_429_with_a_short_retry_after_is_waited_out(world: ArmEmulator, collect: Collect) -> None:
    world.inject("/backups$", Fault(status=429, retry_after=1, times=1))

    server, issues = _collect_one(collect)

    assert issues == []
    assert server is not None and server.backups
    assert [r.status for r in world.requests_matching("/backups$")] == [429, 200]


def test_429_asking_for_longer_than_the_timeout_gives_up_at_once(
    world: ArmEmulator, collect: Collect
) -> None:
    world.inject("/backups$", Fault(status=429, retry_after=3600))

    started = time.monotonic()
    server, issues = _collect_one(collect, timeout_seconds=20)
    elapsed = time.monotonic() - started

    # The SDK alone would sleep 3600 s; the budget refuses the wait instead.
    assert elapsed < 15
    assert server is not None and server.backups is None
    (issue,) = issues
    assert issue.part == "backups"
    assert "429" in issue.reason and "3600" in issue.reason and "--timeout" in issue.reason
    assert len(world.requests_matching("/backups$")) == 1


def test_a_persistent_500_is_retried_then_reported(world: ArmEmulator, collect: Collect) -> None:
    world.inject("/databases$", Fault(status=500))

    server, issues = _collect_one(collect)

    assert server is not None and server.databases is None
    (issue,) = issues
    assert issue.part == "databases"
    assert "500" in issue.reason
    assert len(world.requests_matching("/databases$")) == 4  # the first try and 3 retries


def test_a_transient_500_is_retried_away(world: ArmEmulator, collect: Collect) -> None:
    world.inject("/databases$", Fault(status=500, times=2))

    server, issues = _collect_one(collect)

    assert issues == []
    assert server is not None and server.databases is not None and "zep" in server.databases


def test_a_dropped_connection_is_retried_then_reported(
    world: ArmEmulator, collect: Collect
) -> None:
    world.inject("/replicas$", Fault(drop=True))

    server, issues = _collect_one(collect)

    assert server is not None and server.replicas is None
    (issue,) = issues
    assert issue.part == "replicas"
    assert "connection" in issue.reason
    assert len(world.requests_matching("/replicas$")) == 4


def test_a_single_dropped_connection_is_retried_away(world: ArmEmulator, collect: Collect) -> None:
    world.inject("/replicas$", Fault(drop=True, times=1))

    server, issues = _collect_one(collect)

    assert issues == []
    assert server is not None and server.replicas == ()


def test_a_part_slower_than_the_timeout_is_cut_off_and_the_rest_kept(
    world: ArmEmulator, collect: Collect
) -> None:
    world.inject("/administrators$", Fault(latency=30))

    started = time.monotonic()
    server, issues = _collect_one(collect, timeout_seconds=3)
    elapsed = time.monotonic() - started

    assert elapsed < 10  # bounded by --timeout, not by ARM's 30 s
    assert server is not None and server.administrators is None
    assert server.parameters is not None and server.backups is not None
    (issue,) = issues
    assert issue.part == "administrators"
    assert "--timeout" in issue.reason


def test_the_provider_registration_post_is_never_sent(world: ArmEmulator, collect: Collect) -> None:
    # With the SDK's default pipeline this 409 triggers a POST .../register and polling.
    world.inject(
        "/configurations$",
        Fault(
            status=409,
            error_code="MissingSubscriptionRegistration",
            message="The subscription is not registered to use namespace "
            "'Microsoft.DBforPostgreSQL'.",
        ),
    )

    server, issues = _collect_one(collect)

    assert server is not None and server.parameters is None
    assert [i.part for i in issues] == ["parameters"]
    assert "MissingSubscriptionRegistration" in issues[0].reason
    assert world.violations == []
    assert world.methods() == {"GET"}


class _Credential:
    """Stands in for DefaultAzureCredential: answers the first ``fast`` calls, then hangs."""

    def __init__(self, fast: int) -> None:
        self.fast = fast
        self.release = threading.Event()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.fast > 0:
            self.fast -= 1
        else:
            self.release.wait(60)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def hanging_credential(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    made: list[_Credential] = []

    def install(fast: int) -> None:
        credential = _Credential(fast)
        made.append(credential)
        monkeypatch.setattr(clients, "DefaultAzureCredential", lambda **_: credential)

    yield install
    for credential in made:
        credential.release.set()


def test_a_credential_that_never_answers_is_bounded_by_the_timeout(
    world: ArmEmulator, collect: Collect, hanging_credential: Callable[[int], None]
) -> None:
    hanging_credential(0)

    started = time.monotonic()
    with pytest.raises(AzureCollectionError, match=r"no Azure token in time: .*2 s --timeout"):
        collect(SUB, resource_group=GROUP, server_name=NAME, token_env=None, timeout_seconds=2)

    assert time.monotonic() - started < 8
    assert world.requests == []


def test_a_token_refresh_that_hangs_inside_the_pipeline_is_bounded_too(
    world: ArmEmulator, collect: Collect, hanging_credential: Callable[[int], None]
) -> None:
    hanging_credential(1)  # the sign-in check answers; the pipeline's own request hangs
    before = set(threading.enumerate())

    started = time.monotonic()
    collection = collect(
        SUB, resource_group=GROUP, server_name=NAME, token_env=None, timeout_seconds=2
    )

    assert time.monotonic() - started < 8
    assert collection.section.servers == ()
    assert collection.issues and all("--timeout" in i.reason for i in collection.issues)
    assert world.requests == []
    # The request workers gave up too: none is left waiting on the credential, which would
    # hold the interpreter open at exit (concurrent.futures joins its workers).
    deadline = time.monotonic() + 3
    while _arm_workers(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _arm_workers(before) == []


def _arm_workers(before: set[threading.Thread]) -> list[str]:
    return [
        t.name
        for t in set(threading.enumerate()) - before
        if t.name.startswith("engram-audit-arm") and t.is_alive()
    ]
