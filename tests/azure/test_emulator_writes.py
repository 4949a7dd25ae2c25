"""The emulator's write support is for the remediation test only: by default every write is
still refused and recorded as a violation; a writable emulator applies PUT, PATCH and DELETE
(and a server restart) to what it serves, answers like ARM's long-running operations, refuses a
configuration value outside its ``allowedValues``, and relists PgBouncer's parameters when
PgBouncer is switched on, as Azure does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from engram_audit.model.snapshot_io import load_snapshot
from tests.azure.conftest import TOKEN
from tests.conftest import ROOT
from tests.support.arm_emulator import ArmEmulator, TlsMaterial
from tests.support.arm_world import world_from_servers

pytestmark = pytest.mark.azure

SNAPSHOT = load_snapshot(ROOT / "fixtures" / "snapshots" / "prod-drifted.json")
assert SNAPSHOT.azure is not None
SERVER = SNAPSHOT.azure.servers[0]


def _world() -> dict[str, Any]:
    return world_from_servers(SERVER.subscription_id, [SERVER])


@pytest.fixture
def writable(tls: TlsMaterial) -> Iterator[ArmEmulator]:
    with ArmEmulator(token=TOKEN, tls=tls, writable=True) as emulator:
        emulator.add_world(_world())
        yield emulator


def _call(arm: ArmEmulator, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        f"{arm.url}{path}?api-version=2025-08-01",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        verify=arm.ca_pem,
        timeout=10,
    )


def test_the_default_emulator_refuses_every_write(arm: ArmEmulator) -> None:
    arm.add_world(_world())
    configuration = f"{SERVER.id}/configurations/require_secure_transport"
    for method in ("PUT", "PATCH", "DELETE"):
        assert _call(arm, method, configuration, {"properties": {"value": "on"}}).status_code == 405
    assert _call(arm, "POST", f"{SERVER.id}/restart").status_code == 405
    assert len(arm.violations) == 4 and arm.writes == []
    value = _call(arm, "GET", configuration).json()["properties"]["value"]
    assert value == "OFF"


def test_a_writable_emulator_applies_a_parameter_as_a_long_running_operation(
    writable: ArmEmulator,
) -> None:
    configuration = f"{SERVER.id}/configurations/require_secure_transport"
    answer = _call(writable, "PATCH", configuration, {"properties": {"value": "on"}})
    assert answer.status_code == 202
    status = requests.get(
        answer.headers["Azure-AsyncOperation"], verify=writable.ca_pem, timeout=10
    )
    assert status.json()["status"] == "Succeeded"
    served = _call(writable, "GET", configuration).json()
    assert served["properties"]["value"] == "on"
    assert served["properties"]["dataType"] == "Boolean"  # what the service computes stays
    listed = _call(writable, "GET", f"{SERVER.id}/configurations").json()["value"]
    assert {c["name"]: c["properties"]["value"] for c in listed}["require_secure_transport"] == "on"
    assert writable.violations == []


def test_a_value_outside_allowed_values_is_refused(writable: ArmEmulator) -> None:
    configuration = f"{SERVER.id}/configurations/pg_stat_statements.track"
    refused = _call(writable, "PATCH", configuration, {"properties": {"value": "most"}})
    assert refused.status_code == 400
    assert _call(writable, "GET", configuration).json()["properties"]["value"] == "none"


def test_deletes_restarts_and_only_those_posts(writable: ArmEmulator) -> None:
    rule = f"{SERVER.id}/firewallRules/AllowAll_2026-11-18_14-2-7"
    assert _call(writable, "DELETE", rule).status_code == 202
    assert _call(writable, "GET", rule).status_code == 404
    assert _call(writable, "DELETE", rule).status_code == 202  # nothing to delete: 204 inside
    assert _call(writable, "POST", f"{SERVER.id}/restart").status_code == 202
    assert _call(writable, "POST", f"{SERVER.id}/stop").status_code == 405
    assert writable.violations == [f"POST {SERVER.id}/stop"]
    assert [(w.method, w.status) for w in writable.writes] == [
        ("DELETE", 200),
        ("DELETE", 204),
        ("POST", 200),
    ]


def test_switching_pgbouncer_on_lists_its_parameters_with_azures_defaults(
    writable: ArmEmulator,
) -> None:
    listing = f"{SERVER.id}/configurations"

    def names() -> dict[str, str]:
        items = _call(writable, "GET", listing).json()["value"]
        return {c["name"]: c["properties"]["value"] for c in items}

    assert "pgbouncer.default_pool_size" not in names()
    switch = f"{listing}/pgbouncer.enabled"
    assert _call(writable, "PATCH", switch, {"properties": {"value": "true"}}).status_code == 202
    listed = names()
    # Microsoft's PgBouncer table for PostgreSQL 16 (the catalogue): defaults 50 and 600.
    assert listed["pgbouncer.default_pool_size"] == "50"
    assert listed["pgbouncer.server_idle_timeout"] == "600"
    assert _call(writable, "PATCH", switch, {"properties": {"value": "false"}}).status_code == 202
    assert "pgbouncer.default_pool_size" not in names()
