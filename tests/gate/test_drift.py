"""Drift between snapshots (per resource and property) and between reports (new/fixed/unchanged)."""

from __future__ import annotations

import json
from typing import Any

from engram_audit.gate.drift import ABSENT, PropertyChange, diff_reports, diff_snapshots
from engram_audit.model import Snapshot, Status, Summary
from tests.conftest import snapshot_data
from tests.golden.sample import SERVER, sample_report

PROD_SERVER = (
    "/subscriptions/6f2a1c3e-8b4d-4e2f-9a7c-1d2e3f4a5b6c/resourceGroups/engram-rg/providers/"
    "Microsoft.DBforPostgreSQL/flexibleServers/zep-prod-db"
)
PROD_DB = "postgresql://zep-prod-db.postgres.database.azure.com:5432/zep"


def snapshot(data: dict[str, Any]) -> Snapshot:
    return Snapshot.model_validate(data)


def changes_of(
    old: dict[str, Any], new: dict[str, Any], **options: bool
) -> dict[str, dict[str, PropertyChange]]:
    diff = diff_snapshots(snapshot(old), snapshot(new), **options)
    return {r.resource: {c.path: c for c in r.changes} for r in diff.resources}


def test_identical_snapshots_have_no_drift() -> None:
    data = snapshot_data("prod-drifted")
    diff = diff_snapshots(snapshot(data), snapshot(data))
    assert not diff.has_drift
    assert diff.resources == ()
    assert diff.not_compared == ()


def test_compliant_to_drifted_names_each_changed_property() -> None:
    changes = changes_of(snapshot_data("prod-compliant"), snapshot_data("prod-drifted"))
    server = changes[PROD_SERVER]
    geo = server["resource.properties.backup.geoRedundantBackup"]
    assert (geo.old, geo.new) == ("Enabled", "disabled")
    assert (server["parameters.require_secure_transport.value"].new) == "OFF"
    opened = server["firewall_rules[AllowAll_2026-11-18_14-2-7]"]
    assert opened.old == ABSENT
    assert opened.new["start_ip_address"] == "0.0.0.0"
    assert changes["env:ZEP_STORE_POSTGRES_DSN"]["sslmode"].new == "prefer"
    assert (
        "vector_indexes[public/fact_embedding/fact_embedding_embedding_ivfflat_idx]"
        in changes[PROD_DB]
    )


def test_reordered_lists_are_not_drift() -> None:
    old = snapshot_data("prod-drifted")
    new = json.loads(json.dumps(old))
    new["azure"]["servers"][0]["firewall_rules"].reverse()
    new["postgres"]["databases"][0]["tables"].reverse()
    assert not diff_snapshots(snapshot(old), snapshot(new)).has_drift


def test_runtime_statistics_are_ignored_unless_asked_for() -> None:
    old = snapshot_data("prod-drifted")
    new = json.loads(json.dumps(old))
    database = new["postgres"]["databases"][0]
    database["database_size_bytes"] = (database.get("database_size_bytes") or 0) + 4096
    database["tables"][0]["n_live_tup"] = (database["tables"][0].get("n_live_tup") or 0) + 10
    new["azure"]["servers"][0]["backups"] = []
    assert not diff_snapshots(snapshot(old), snapshot(new)).has_drift
    loud = changes_of(old, new, include_volatile=True)
    assert "database_size_bytes" in loud[PROD_DB]
    assert any(path.endswith(".n_live_tup") for path in loud[PROD_DB])


def test_a_part_collected_on_one_side_only_is_not_compared_not_drift() -> None:
    old = snapshot_data("prod-drifted")
    new = json.loads(json.dumps(old))
    new["azure"]["servers"][0]["parameters"] = None
    diff = diff_snapshots(snapshot(old), snapshot(new))
    assert not diff.has_drift
    assert diff.not_compared == (f"{PROD_SERVER}: parameters not collected in the new snapshot",)


def test_added_and_removed_resources_and_arm_id_case() -> None:
    old = snapshot_data("prod-drifted")
    new = json.loads(json.dumps(old))
    server = new["azure"]["servers"][0]
    server["id"] = server["id"].replace("resourceGroups", "resourcegroups")
    entry = dict(new["dsn"]["entries"][0], variable="ZEP_NEW_DSN")
    new["dsn"]["entries"] = [entry]
    diff = diff_snapshots(snapshot(old), snapshot(new))
    kinds = {r.resource: r.kind for r in diff.resources}
    assert kinds == {"env:ZEP_NEW_DSN": "added", "env:ZEP_STORE_POSTGRES_DSN": "removed"}


def test_report_diff_new_fixed_unchanged() -> None:
    old = sample_report()
    flipped = tuple(
        f.model_copy(update={"status": Status.PASS})
        if (f.rule, f.resource) == ("prod.backup.geo_redundant", SERVER)
        else f.model_copy(update={"status": Status.FAIL})
        if f.rule == "prod.dsn.sslmode"
        else f
        for f in old.findings
    )
    new = old.model_copy(update={"findings": flipped, "summary": Summary.of(flipped)})
    diff = diff_reports(old, new)
    assert diff.has_drift
    assert [(c.rule, c.resource, c.old_status, c.new_status) for c in diff.fixed] == [
        ("prod.backup.geo_redundant", SERVER, "fail", "pass")
    ]
    assert [(c.rule, c.resource, c.old_status) for c in diff.new_findings] == [
        ("prod.dsn.sslmode", "env:ZEP_READER_DSN", "skip")
    ]
    assert len(diff.unchanged) == 5  # 4 fail + 1 error that stayed
    assert not diff_reports(old, old).has_drift


def test_arm_spelling_of_the_same_value_is_not_drift() -> None:
    from engram_audit.gate.drift import diff_snapshots
    from engram_audit.model import Snapshot
    from tests.conftest import snapshot_data

    old = snapshot_data("prod-compliant")
    new = snapshot_data("prod-compliant")
    props = new["azure"]["servers"][0]["resource"]["properties"]
    new["azure"]["servers"][0]["resource"]["sku"]["tier"] = "generalpurpose"
    props["backup"]["backupRetentionDays"] = "35"
    props["highAvailability"]["mode"] = "zoneredundant"
    diff = diff_snapshots(Snapshot.model_validate(old), Snapshot.model_validate(new))
    assert not diff.has_drift, diff
    props["backup"]["backupRetentionDays"] = "7"
    changed = diff_snapshots(Snapshot.model_validate(old), Snapshot.model_validate(new))
    assert changed.has_drift
