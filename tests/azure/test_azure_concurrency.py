"""--concurrency is requests in flight per subscription: subscriptions are read side by side,
none beyond its own limit, the whole run within MAX_IN_FLIGHT. No assertion is about time: a
barrier that only --concurrency requests in flight per subscription, in two subscriptions at
once, can pass proves they run side by side."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from typing import Any

import pytest

from engram_audit.collectors.azure import collector
from engram_audit.collectors.azure.parts import PARTS, Part, ServerRef
from engram_audit.collectors.azure.request import (
    MAX_IN_FLIGHT,
    AzureRequest,
    Discovery,
    in_flight_limit,
)
from tests.azure.conftest import Collect
from tests.support.arm_emulator import ArmEmulator
from tests.support.arm_world import fleet_world, load_world

pytestmark = pytest.mark.azure

SUB = "5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f"
OTHER = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"


def _fleet(subscription: str, count: int) -> dict[str, Any]:
    template = copy.deepcopy(load_world("prod-unseen-compliant"))
    template["servers"][0]["server"]["tags"] = {"fleet": "t"}
    return fleet_world(template, subscription, "fleet", count)


def test_each_subscription_has_its_own_requests_in_flight(
    arm: ArmEmulator, collect: Collect, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm.add_world(_fleet(SUB, 4))
    arm.add_world(_fleet(OTHER, 4))
    concurrency = 2
    # Passes only when both subscriptions have --concurrency requests in flight at once; with
    # one pool of --concurrency workers for the run it would wait until its timeout and break.
    both = threading.Barrier(2 * concurrency, timeout=20)
    lock = threading.Lock()
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    (firewall,) = [part for part in PARTS if part.field == "firewall_rules"]

    def read(clients: Any, ref: ServerRef) -> Any:
        subscription = ref.subscription_id.casefold()
        with lock:
            in_flight[subscription] += 1
            peak[subscription] = max(peak[subscription], in_flight[subscription])
            calls[subscription] += 1
            # The first read of a subscription goes alone (the pacer learns its budget from the
            # answer); the next --concurrency meet the other subscription's at the barrier.
            meet = 2 <= calls[subscription] <= concurrency + 1
        try:
            if meet:
                both.wait()
            return firewall.read(clients, ref)
        finally:
            with lock:
                in_flight[subscription] -= 1

    monkeypatch.setattr(
        collector, "PARTS", (Part(firewall.field, firewall.what, firewall.permission, read),)
    )

    collection = collect(
        None,
        subscriptions=(SUB, OTHER),
        tag=("fleet", "t"),
        concurrency=concurrency,
        parts=frozenset({"azure.server", "azure.firewall_rules"}),
    )

    assert collection.issues == ()
    assert len(collection.section.servers) == 8
    assert all(server.firewall_rules is not None for server in collection.section.servers)
    assert peak == {SUB: concurrency, OTHER: concurrency}
    assert arm.stats()["throttled"] == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"subscription_id": SUB, "resource_group": "rg", "server_name": "db"}, 8),
        ({"subscription_id": SUB, "resource_group": "rg"}, 8),
        ({"subscriptions": (SUB, OTHER), "tag": ("a", "b")}, 8 * 3),  # + Resource Graph
        (
            {
                "subscriptions": tuple(f"{n:08d}-0000-0000-0000-000000000000" for n in range(10)),
                "tag": ("a", "b"),
            },
            MAX_IN_FLIGHT,
        ),
        ({"management_group": "mg", "tag": ("a", "b")}, MAX_IN_FLIGHT),
        ({"subscription_id": SUB, "tag": ("a", "b"), "concurrency": 64}, MAX_IN_FLIGHT),
        ({"subscription_id": SUB, "tag": ("a", "b"), "concurrency": 1}, 2),
    ],
)
def test_the_run_has_concurrency_per_budget_and_at_most_max_in_flight(
    fields: dict[str, Any], expected: int
) -> None:
    request = AzureRequest(**fields)
    assert in_flight_limit(request) == expected
    assert in_flight_limit(request) <= MAX_IN_FLIGHT
    if "server_name" in fields:
        assert request.discovery is Discovery.SERVER
