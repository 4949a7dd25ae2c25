"""Every ``azure.*`` check PASSes and FAILs on state read live through the SDK and the emulator.

The bundled snapshots (a compliant and a drifted one per environment) are turned back into
the ARM state they describe, served over HTTPS and collected again: the collector must give
back exactly the same servers, and the environment's policy must judge them the same way.
Across those eight states and the unseen prod worlds of ``fixtures/arm``, every ``azure.*``
check in the catalogue must both pass and fail, so none is only tested on hand-built data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engram_audit.checks import CATALOGUE
from engram_audit.collectors.azure.collector import AzureRequest, collect_azure
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Finding, Snapshot, Source, Status
from engram_audit.model.snapshot_io import load_snapshot
from engram_audit.policy.loader import load_policy, policy_path_for
from tests.azure.conftest import TOKEN, TOKEN_VARIABLE
from tests.support.arm_emulator import ArmEmulator, TlsMaterial
from tests.support.arm_world import load_world, world_from_servers

pytestmark = pytest.mark.azure

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = sorted((REPO / "fixtures" / "snapshots").glob("*.json"))
# The clock of the bundled snapshots and of fixtures/arm (backup ages are relative to it).
COLLECTED_AT = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
AZURE_CHECKS = sorted(c.id for c in CATALOGUE if c.id.startswith("azure."))


def _through_arm(snapshot: Snapshot, tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch) -> Snapshot:
    """Serve the snapshot's Azure state from a fresh emulator and collect it with the SDK."""
    assert snapshot.azure is not None
    servers = list(snapshot.azure.servers)
    world = world_from_servers(servers[0].subscription_id, servers)
    return _collect_world(world, tls, monkeypatch, snapshot.environment, snapshot.collected_at)


def _collect_world(
    world: dict[str, Any],
    tls: TlsMaterial,
    monkeypatch: pytest.MonkeyPatch,
    environment: str = "prod",
    collected_at: datetime = COLLECTED_AT,
) -> Snapshot:
    """Collect every server of the world's (single) resource group through the SDK."""
    subscription = world["subscriptionId"]
    group = world["servers"][0]["server"]["id"].split("/")[4]
    with ArmEmulator(token=TOKEN, tls=tls) as arm:
        arm.add_world(world)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", arm.ca_pem)
        monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
        request = AzureRequest(
            subscription,
            resource_group=group,
            arm_endpoint=arm.url,
            token_env=TOKEN_VARIABLE,
            timeout_seconds=30,
        )
        collection = collect_azure(request, show_progress=False)
        assert arm.methods() == {"GET"}
        assert arm.violations == []
    return assemble(
        environment, azure=collection.section, issues=collection.issues, collected_at=collected_at
    )


def _note(seen: dict[str, set[Status]], findings: Iterable[Finding]) -> None:
    for finding in findings:
        if finding.check in seen:
            seen[finding.check].add(finding.status)


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[p.stem for p in SNAPSHOTS])
def test_bundled_azure_state_survives_a_round_trip_through_arm(
    path: Path, tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = load_snapshot(path)
    live = _through_arm(bundled, tls, monkeypatch)

    assert live.issues == ()
    assert live.azure == bundled.azure

    policy = load_policy(policy_path_for(bundled.environment, REPO / "policies"))

    def verdicts(snapshot: Snapshot) -> list[tuple[str, str, Status, str, str]]:
        report = evaluate(policy, snapshot, {Source.AZURE})
        return [(f.rule, f.resource, f.status, f.expected, f.actual) for f in report.findings]

    assert verdicts(live) == verdicts(bundled)


def test_every_azure_check_passes_and_fails_on_live_collected_state(
    tls: TlsMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, set[Status]] = {check: set() for check in AZURE_CHECKS}
    for path in SNAPSHOTS:
        live = _through_arm(load_snapshot(path), tls, monkeypatch)
        policy = load_policy(policy_path_for(live.environment, REPO / "policies"))
        _note(seen, evaluate(policy, live, {Source.AZURE}).findings)
    prod = load_policy(policy_path_for("prod", REPO / "policies"))
    for name in ("prod-unseen-compliant", "prod-unseen-drifted"):
        live = _collect_world(load_world(name), tls, monkeypatch)
        _note(seen, evaluate(prod, live, {Source.AZURE}).findings)

    missing = {
        check: sorted(s.value for s in {Status.PASS, Status.FAIL} - statuses)
        for check, statuses in seen.items()
        if not {Status.PASS, Status.FAIL} <= statuses
    }
    assert missing == {}, f"azure checks never seen with these statuses: {missing}"
