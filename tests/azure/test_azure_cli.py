"""``engram-audit check`` against the emulator, as a CI job runs it: a real process, real exit code.

The issue's "Done when": a production server the tool has never seen, with odd casing and
drift, is reported drift by drift with the right expected and actual values, the run exits 1,
sends only GETs, reads parameters with one list call and never prints the token.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.azure.conftest import TOKEN
from tests.support.arm_emulator import ArmEmulator, Fault, ForeignHost
from tests.support.arm_world import load_world

pytestmark = pytest.mark.azure

REPO = Path(__file__).resolve().parents[2]
GROUP = "RG-Engram-Prod-EUW"  # as an operator types it; ARM's ids say rg-engram-prod-euw
SERVER = "Engram-Zep-Prod-EU2"


def _fresh(world: dict[str, Any], newest_hours: float) -> dict[str, Any]:
    """The world with automatic backups relative to now (the live run's clock)."""
    fresh = copy.deepcopy(world)
    newest = datetime.now(UTC) - timedelta(hours=newest_hours)
    automatic = [
        b
        for bundle in fresh["servers"]
        for b in bundle["backups"]
        if b["properties"]["source"] == "Automatic"
    ]
    for day, backup in enumerate(automatic):
        backup["properties"]["completedTime"] = (newest - timedelta(days=day)).isoformat()
    return fresh


def _engram_audit(
    arm: ArmEmulator, *args: str, tmp_path: Path, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ENGRAM_AUDIT_", "AZURE_")) and "PROXY" not in key.upper()
    }
    env.update(REQUESTS_CA_BUNDLE=arm.ca_pem, PIPELINE_ARM_TOKEN=TOKEN, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "engram_audit", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check(
    arm: ArmEmulator,
    tmp_path: Path,
    *extra: str,
    subscription: str | None = None,
    env_extra: dict[str, str] | None = None,
    endpoint: str | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / "report.json"
    result = _engram_audit(
        arm,
        "check",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--subscription",
        subscription or load_world("prod-unseen-drifted")["subscriptionId"],
        "--arm-endpoint",
        endpoint or arm.url,
        "--azure-token-env",
        "PIPELINE_ARM_TOKEN",
        "-o",
        f"json:{report}",
        *extra,
        tmp_path=tmp_path,
        env_extra=env_extra,
    )
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    document: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    if report.exists():
        assert TOKEN not in report.read_text()
    return result, document


def _verdicts(report: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        f["rule"]: (f["status"], f["expected"], f["actual"])
        for f in report["findings"]
        if f["check"].startswith("azure.")
    }


def test_done_when_an_unseen_drifted_server_fails_with_expected_and_actual(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(_fresh(load_world("prod-unseen-drifted"), newest_hours=80))

    result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", SERVER)

    assert result.returncode == 1, result.stderr
    verdicts = _verdicts(report)
    assert {rule: v for rule, v in verdicts.items() if v[0] == "fail"} == {
        "ZEP-AZ-VERSION": ("fail", "16", "15"),
        "ZEP-AZ-SKU-TIER": ("fail", "GeneralPurpose or MemoryOptimized", "burstable"),
        "ZEP-AZ-STORAGE-SIZE": ("fail", ">= 128 GB", "64 GB"),
        "ZEP-AZ-STORAGE-AUTOGROW": ("fail", "Enabled", "disabled"),
        "ZEP-AZ-HA": ("fail", "ZoneRedundant, Healthy", "sameZone, healthy"),
        "ZEP-AZ-BACKUP-RETENTION": ("fail", ">= 35 days", "14 days"),
        "ZEP-AZ-GEO-BACKUP": ("fail", "Enabled", "DISABLED"),
        "ZEP-AZ-BACKUP-RECENT": verdicts["ZEP-AZ-BACKUP-RECENT"],
        "ZEP-AZ-TLS-REQUIRED": ("fail", "on", "Off"),
        "ZEP-AZ-TLS-MIN-VERSION": ("fail", ">= TLSv1.2", "tlsv1.1"),
        "ZEP-AZ-EXTENSIONS-VECTOR": ("fail", "includes vector", "PG_TRGM"),
        # Burstable: Azure lists no pgbouncer.* at all, and production requires PgBouncer.
        "ZEP-AZ-PGBOUNCER": ("fail", "true", "not offered"),
        "ZEP-AZ-FIREWALL-OPEN": (
            "fail",
            "no rule wider than 256 addresses",
            "ClientIPAddress_wide (10.0.0.0-10.255.255.255)",
        ),
        "ZEP-AZ-ALLOW-AZURE-SERVICES": (
            "fail",
            "absent",
            "present (AllowAllAzureServicesAndResourcesWithinAzureIps)",
        ),
        "ZEP-AZ-PUBLIC-ACCESS": ("fail", "Disabled", "ENABLED"),
        "ZEP-AZ-ENCRYPTION": ("fail", "AzureKeyVault", "systemManaged"),
        "ZEP-AZ-ENTRA": (
            "fail",
            "Entra auth Enabled, >= 1 Entra admin(s)",
            "Entra auth Disabled, 0 admin(s), password auth Enabled",
        ),
        "ZEP-AZ-ALERTS": verdicts["ZEP-AZ-ALERTS"],
        # Security-review parity rules, judged through the SDK as ARM sends them.
        "ZEP-AZ-LOG-CHECKPOINTS": ("fail", "= on", "OFF"),
        "ZEP-AZ-LOG-RETENTION": ("fail", ">= 7", "3"),
        "ZEP-AZ-PGAUDIT-ALLOWLIST": ("fail", "includes pgaudit", "PG_TRGM"),
        "ZEP-AZ-PGAUDIT-LOG": ("fail", "logs DDL, ROLE", "NONE"),
        "ZEP-AZ-DEFENDER": ("fail", "Enabled", "disabled"),
        "ZEP-AZ-DIAGNOSTIC-LOGS": (
            "fail",
            "PostgreSQLLogs or allLogs sent to a Log Analytics workspace",
            "no diagnostic setting",
        ),
    }
    assert verdicts["ZEP-AZ-BACKUP-RECENT"][2].startswith("newest ")
    assert "80." in verdicts["ZEP-AZ-BACKUP-RECENT"][2]  # hours old, as served
    # Backup failures are no Azure metric: azure.backup.recent, not an alert, covers them.
    assert verdicts["ZEP-AZ-ALERTS"][2].endswith("missing: storage")
    assert report["collection_issues"] == []
    # Read-only, one list call for ~50 parameters, and the token sent (not shown) on each.
    assert arm.methods() == {"GET"} and arm.violations == []
    assert [r.continuation for r in arm.requests_matching("/configurations")] == [False]
    assert all(r.authorized for r in arm.requests)
    assert "ZEP-AZ-STORAGE-SIZE" in result.stdout  # the console report


def test_the_same_server_compliant_but_oddly_cased_passes(arm: ArmEmulator, tmp_path: Path) -> None:
    arm.add_world(_fresh(load_world("prod-unseen-compliant"), newest_hours=4))

    result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", SERVER)

    assert result.returncode == 0, result.stdout + result.stderr
    statuses = {status for status, _, _ in _verdicts(report).values()}
    assert statuses == {"pass"}


def test_a_part_that_cannot_be_read_errors_its_rules_only_and_exits_3(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(_fresh(load_world("prod-unseen-compliant"), newest_hours=4))
    arm.inject("/firewallRules$", Fault(status=403, error_code="AuthorizationFailed"))

    result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", SERVER)

    assert result.returncode == 3
    verdicts = _verdicts(report)
    errored = {rule for rule, (status, _, _) in verdicts.items() if status == "error"}
    assert errored == {"ZEP-AZ-FIREWALL-OPEN", "ZEP-AZ-ALLOW-AZURE-SERVICES"}
    assert {status for rule, (status, _, _) in verdicts.items() if rule not in errored} == {"pass"}
    (issue,) = report["collection_issues"]
    assert issue["part"] == "firewall_rules"
    assert "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/read" in issue["reason"]
    assert "firewallRules/read" in result.stderr


@pytest.mark.parametrize(
    "answer",
    [
        {"error": {"code": "BadGateway", "message": "upstream"}},
        {},
        {"value": "oops"},
        {"value": [{"name": "AllowAll"}, "not-an-object"]},
        [],
    ],
    ids=["an-error-body", "no-value", "value-not-a-list", "an-item-not-an-object", "a-list"],
)
def test_a_200_that_is_not_a_list_errors_its_rules_never_reads_as_no_firewall_rule(
    arm: ArmEmulator, tmp_path: Path, answer: object
) -> None:
    # The drifted server has a firewall rule open to the internet: an answer read as "no rules"
    # would turn its failure into a pass.
    arm.add_world(_fresh(load_world("prod-unseen-drifted"), newest_hours=80))
    arm.inject("/firewallRules$", Fault(answer=answer))

    result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", SERVER)

    assert result.returncode == 3
    verdicts = _verdicts(report)
    assert verdicts["ZEP-AZ-FIREWALL-OPEN"][0] == "error"
    assert verdicts["ZEP-AZ-ALLOW-AZURE-SERVICES"][0] == "error"
    (issue,) = [i for i in report["collection_issues"] if i["part"] == "firewall_rules"]
    assert "unreadable answer: ARM's answer to GET" in issue["reason"]


def test_an_endpoint_trickling_its_answer_cannot_hold_the_run_past_its_timeout(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    # Each read's socket timeout is met by a byte a second; only --timeout bounds the whole.
    # The subprocess's own limit (120 s) is the hang guard: the trickle would last 300 s.
    listener = socket.create_server(("127.0.0.1", 0))
    context = arm.tls.server_context()
    stop = threading.Event()

    def trickle(raw: socket.socket) -> None:
        with contextlib.suppress(OSError), context.wrap_socket(raw, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n{")
            while not stop.wait(1.0):
                tls.sendall(b" ")

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                raw, _ = listener.accept()
                threading.Thread(target=trickle, args=(raw,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        result, report = _check(
            arm,
            tmp_path,
            "--resource-group",
            GROUP,
            "--server",
            SERVER,
            "--timeout",
            "3",
            endpoint=f"https://127.0.0.1:{listener.getsockname()[1]}",
        )
    finally:
        stop.set()
        listener.close()

    assert result.returncode == 3, result.stderr
    assert all(
        f["status"] == "error" for f in report["findings"] if f["check"].startswith("azure.")
    )
    assert any("not read in time" in i["reason"] for i in report["collection_issues"])


def test_a_missing_server_is_a_clear_error_and_exits_3(arm: ArmEmulator, tmp_path: Path) -> None:
    arm.add_world(load_world("prod-unseen-compliant"))

    result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", "zep-nope")

    assert result.returncode == 3
    assert "server zep-nope not found in resource group RG-Engram-Prod-EUW" in result.stderr
    assert report["collection_issues"][0]["part"] is None


def test_tag_discovery_from_the_cli(arm: ArmEmulator, tmp_path: Path) -> None:
    fleet = load_world("fleet")
    arm.add_world(fleet)
    report = tmp_path / "snapshot.json"

    result = _engram_audit(
        arm,
        "collect",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--subscription",
        fleet["subscriptionId"],
        "--tag",
        "environment=prod",
        "--arm-endpoint",
        arm.url,
        "--azure-token-env",
        "PIPELINE_ARM_TOKEN",
        "--output",
        str(report),
        tmp_path=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    snapshot = json.loads(report.read_text())
    assert sorted(s["name"] for s in snapshot["azure"]["servers"]) == [
        "zep-prod-neu-db",
        "zep-prod-weu-db",
    ]
    assert TOKEN not in report.read_text() + result.stdout + result.stderr


def test_a_plain_http_endpoint_is_refused_before_sending_anything(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    result, _ = _check(
        arm,
        tmp_path,
        "--resource-group",
        GROUP,
        "--server",
        SERVER,
        "--arm-endpoint",
        "http://127.0.0.1:9",
    )

    assert result.returncode == 2, "wrong settings are input errors"
    assert "https://" in result.stderr
    assert arm.requests == []


def test_a_next_link_to_another_host_is_an_issue_naming_it_and_exits_3(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    world = _fresh(load_world("prod-unseen-compliant"), newest_hours=4)
    arm.add_world(world)
    server_id = world["servers"][0]["server"]["id"]
    with ForeignHost() as foreign:
        arm.hostile_next_link(
            "/firewallRules$", f"{foreign.origin}{server_id}/firewallRules?$skiptoken=page1"
        )

        result, report = _check(arm, tmp_path, "--resource-group", GROUP, "--server", SERVER)

        assert foreign.connections == 0
    assert result.returncode == 3, result.stdout + result.stderr
    (issue,) = report["collection_issues"]
    assert issue["part"] == "firewall_rules"
    assert f"https://127.0.0.1:{foreign.port}" in issue["reason"]
    assert f"https://127.0.0.1:{foreign.port}" in result.stderr
    errored = {rule for rule, (status, _, _) in _verdicts(report).items() if status == "error"}
    assert errored == {"ZEP-AZ-FIREWALL-OPEN", "ZEP-AZ-ALLOW-AZURE-SERVICES"}
    assert arm.methods() == {"GET"} and arm.violations == []


# --- an empty answer is not a green gate ---------------------------------------------------------

FLEET = load_world("fleet")
FLEET_SUB = FLEET["subscriptionId"]
EMPTY_SUB = "00000000-1111-2222-3333-444444444444"
EMPTY_SCOPES = [
    (
        "tag-typo",
        FLEET_SUB,
        ("--tag", "environment=prdo"),
        f"/subscriptions/{FLEET_SUB}",
        f"no flexible server matched tag environment=prdo in subscription {FLEET_SUB}",
    ),
    (
        "empty-resource-group",
        FLEET_SUB,
        ("--resource-group", "rg-empty"),
        f"/subscriptions/{FLEET_SUB}/resourceGroups/rg-empty",
        f"no flexible server in resource group rg-empty of subscription {FLEET_SUB}",
    ),
    (
        "empty-subscription",
        EMPTY_SUB,
        ("--tag", "environment=prod"),
        f"/subscriptions/{EMPTY_SUB}",
        f"no flexible server matched tag environment=prod in subscription {EMPTY_SUB}",
    ),
]


@pytest.fixture
def fleet(arm: ArmEmulator) -> ArmEmulator:
    arm.add_world(FLEET)
    arm.world.add_group(FLEET_SUB, "rg-empty")
    arm.world.add_subscription(EMPTY_SUB)
    return arm


@pytest.mark.parametrize(
    ("label", "subscription", "scope", "resource", "message"),
    EMPTY_SCOPES,
    ids=[e[0] for e in EMPTY_SCOPES],
)
def test_an_empty_scope_is_a_collection_issue_and_exits_3(
    fleet: ArmEmulator,
    tmp_path: Path,
    label: str,
    subscription: str,
    scope: tuple[str, ...],
    resource: str,
    message: str,
) -> None:
    result, report = _check(fleet, tmp_path, *scope, subscription=subscription)

    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stderr
    (issue,) = report["collection_issues"]
    assert (issue["resource"], issue["part"]) == (resource, None)
    assert issue["reason"].startswith(message)
    statuses = {status for status, _, _ in _verdicts(report).values()}
    assert statuses == {"error"}, "an empty scope must not read as 0 of 0 passed"


@pytest.mark.parametrize(
    ("label", "subscription", "scope", "resource", "message"),
    EMPTY_SCOPES,
    ids=[e[0] for e in EMPTY_SCOPES],
)
def test_allow_empty_accepts_an_empty_scope_with_skips_and_a_note(
    fleet: ArmEmulator,
    tmp_path: Path,
    label: str,
    subscription: str,
    scope: tuple[str, ...],
    resource: str,
    message: str,
) -> None:
    result, report = _check(fleet, tmp_path, *scope, "--allow-empty", subscription=subscription)

    assert result.returncode == 0, result.stdout + result.stderr
    assert report["collection_issues"] == []
    assert {status for status, _, _ in _verdicts(report).values()} == {"skip"}
    assert all(
        f["message"] == "no resources examined"
        for f in report["findings"]
        if f["check"].startswith("azure.")
    )
    assert f"note: {message}; --allow-empty accepts that" in result.stderr


def test_allow_empty_comes_from_the_environment_and_applies_to_collect(
    fleet: ArmEmulator, tmp_path: Path
) -> None:
    result, _ = _check(
        fleet,
        tmp_path,
        "--tag",
        "environment=prdo",
        subscription=FLEET_SUB,
        env_extra={"ENGRAM_AUDIT_ALLOW_EMPTY": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr

    snapshot = tmp_path / "snapshot.json"
    collect = [
        "collect",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--subscription",
        FLEET_SUB,
        "--tag",
        "environment=prdo",
        "--arm-endpoint",
        fleet.url,
        "--azure-token-env",
        "PIPELINE_ARM_TOKEN",
        "--output",
        str(snapshot),
    ]
    refused = _engram_audit(fleet, *collect, tmp_path=tmp_path)
    assert refused.returncode == 3
    assert "no flexible server matched tag environment=prdo" in refused.stderr
    accepted = _engram_audit(fleet, *collect, "--allow-empty", tmp_path=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(snapshot.read_text())["azure"]["servers"] == []
