"""Terraform plans read into the Azure model: each mapping rule, on real and hand-written plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.iac.terraform import PlanReading, parse_address, read_plan
from engram_audit.errors import InputError
from engram_audit.model.snapshot import AzureServer, PlannedValue
from tests.support.iac_cases import IAC

HANDWRITTEN = IAC / "handwritten"


def read(path: Path) -> PlanReading:
    return read_plan(path, str(path))


def server(reading: PlanReading, name: str) -> AzureServer:
    return next(s for s in reading.section.servers if s.name == name)


def opened(reading: PlanReading, server_id: str) -> dict[str, PlannedValue]:
    return {
        "/".join(v.path): v
        for v in reading.origin.planned
        if v.server == server_id and v.state != "default"
    }


def defaults(reading: PlanReading, server_id: str) -> dict[str, PlannedValue]:
    return {
        "/".join(v.path): v
        for v in reading.origin.planned
        if v.server == server_id and v.state == "default"
    }


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# --- the format -------------------------------------------------------------------------------


def test_another_major_format_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"format_version '2\.0' cannot be read.*1\.x"):
        read(write(tmp_path, {"format_version": "2.0", "planned_values": {}}))


def test_a_state_or_other_json_is_not_taken_for_a_plan(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="a Terraform state, not a plan"):
        read(write(tmp_path, {"format_version": "1.0", "values": {"root_module": {}}}))
    with pytest.raises(InputError, match="no format_version"):
        read(write(tmp_path, {"resources": []}))
    with pytest.raises(InputError, match="a Terraform plan is a JSON object"):
        read(write(tmp_path, []))
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json:2:.*not valid JSON"):
        read(bad)


def test_every_minor_version_of_format_1_is_read() -> None:
    plan = json.loads((IAC / "zodiacae" / "aks-demo.plan.json").read_text(encoding="utf-8"))
    assert plan["format_version"] == "1.2"
    assert read(IAC / "zodiacae" / "aks-demo.plan.json").origin.format_version == "1.2"


def test_addresses_are_taken_apart_with_module_instances() -> None:
    address = parse_address('module.db["a.b"].module.x[0].azurerm_x.y["k"]')
    assert address is not None
    assert address.modules == (("db", '"a.b"'), ("x", "0"))
    assert (address.type, address.name, address.index) == ("azurerm_x", "y", '"k"')
    assert address.block == "azurerm_x.y"
    assert parse_address("nonsense") is None


# --- the server ---------------------------------------------------------------------------------


def test_real_plan_server_body_and_what_it_leaves_to_azure() -> None:
    reading = read(IAC / "zodiacae" / "aks-demo.plan.json")
    (pg,) = reading.section.servers
    assert pg.resource["sku"] == {"name": "Standard_D4s_v3", "tier": "GeneralPurpose"}
    assert pg.resource["properties"]["storage"] == {"storageSizeGB": 32, "autoGrow": "Disabled"}
    assert pg.resource["properties"]["version"] == "13"
    assert pg.resource["properties"]["network"]["publicNetworkAccess"] == "Disabled"
    assert reading.origin.tool == "terraform_version 1.9.4"
    # Not declared in the configuration: the provider's or Azure's default, said so.
    assert set(defaults(reading, pg.id)) == {
        "resource/properties/storage/autoGrow",
        "resource/properties/backup/backupRetentionDays",
        "resource/properties/backup/geoRedundantBackup",
        "resource/properties/highAvailability/mode",
        "resource/properties/authConfig",
        "resource/properties/dataEncryption",
    }
    assert pg.resource["properties"]["backup"]["backupRetentionDays"] == 7


def test_sku_prefixes_name_the_tier() -> None:
    compliant = read(HANDWRITTEN / "prod-compliant.plan.json")
    modules = read(HANDWRITTEN / "modules" / "plan.json")
    assert server(compliant, "zep-prod-db").resource["sku"] == {
        "name": "Standard_E4ds_v5",
        "tier": "MemoryOptimized",
    }
    assert server(modules, "zep-blue-db").resource["sku"]["tier"] == "Burstable"


def test_declared_blocks_map_to_arm_and_the_subscription_comes_from_known_ids() -> None:
    reading = read(HANDWRITTEN / "prod-compliant.plan.json")
    pg = server(reading, "zep-prod-db")
    properties = pg.resource["properties"]
    assert properties["authConfig"] == {
        "activeDirectoryAuth": "Enabled",
        "passwordAuth": "Disabled",
    }
    assert properties["dataEncryption"]["type"] == "AzureKeyVault"
    assert properties["highAvailability"]["mode"] == "ZoneRedundant"
    assert properties["storage"] == {"storageSizeGB": 128, "autoGrow": "Enabled"}
    assert pg.subscription_id == "6f1c8b4e-2d3a-4b5c-9e8f-0a1b2c3d4e5f"
    assert defaults(reading, pg.id).keys() == set()  # everything declared


def test_a_created_server_without_known_ids_gets_a_placeholder_id() -> None:
    reading = read(IAC / "avm-terraform" / "default.plan.json")
    (pg,) = reading.section.servers
    assert pg.id.startswith(
        "/subscriptions/(known-after-apply)/resourceGroups/(known after apply)/"
    )
    assert pg.id.endswith("/flexibleServers/module.test.azurerm_postgresql_flexible_server.this")


def test_module_variables_left_null_are_not_declared() -> None:
    """module.test passes no backup_retention_days: the module's variable defaults to null, so
    the attribute is not declared and Azure's 7 days applies; public access comes from the
    module's own default (false): declared."""
    reading = read(IAC / "avm-terraform" / "default.plan.json")
    (pg,) = reading.section.servers
    assumed = defaults(reading, pg.id)
    assert "resource/properties/backup/backupRetentionDays" in assumed
    assert "resource/properties/storage/storageSizeGB" in assumed
    assert "resource/properties/network/publicNetworkAccess" not in assumed
    assert pg.resource["properties"]["network"]["publicNetworkAccess"] == "Disabled"


def test_a_value_unknown_until_apply_is_open_and_absent() -> None:
    reading = read(HANDWRITTEN / "unknowns.plan.json")
    pg = server(reading, "zep-uat-db")
    assert "backupRetentionDays" not in pg.resource["properties"].get("backup", {})
    retention = opened(reading, pg.id)["resource/properties/backup/backupRetentionDays"]
    assert (retention.attribute, retention.reason) == (
        "backup_retention_days",
        "unknown until apply",
    )
    assert 7 in retention.candidates and 35 in retention.candidates


def test_ha_health_is_live_state() -> None:
    reading = read(HANDWRITTEN / "prod-compliant.plan.json")
    pg = server(reading, "zep-prod-db")
    state = opened(reading, pg.id)["resource/properties/highAvailability/state"]
    assert state.state == "live"
    assert state.candidates[0] == "Healthy"


# --- children ----------------------------------------------------------------------------------


def test_children_find_their_server_through_the_configuration() -> None:
    """server_id is known only after apply: the configuration's references name the server."""
    reading = read(IAC / "zodiacae" / "aks-demo.plan.json")
    (pg,) = reading.section.servers
    assert [(r.name, r.start_ip_address, r.end_ip_address) for r in pg.firewall_rules or ()] == [
        ("allow_internal", "10.0.1.1", "10.0.1.254")
    ]
    addresses = {r.id: r.address for r in reading.origin.resources}
    assert addresses[f"{pg.id}/firewallRules/allow_internal"] == (
        "azurerm_postgresql_flexible_server_firewall_rule.allow_internal"
    )


def test_module_instances_keep_their_children_apart() -> None:
    reading = read(HANDWRITTEN / "modules" / "plan.json")
    blue, green = server(reading, "zep-blue-db"), server(reading, "zep-green-db")
    assert blue.parameters is not None and green.parameters is not None
    assert blue.parameters["ssl_min_protocol_version"].value == "TLSv1.2"
    assert green.parameters["ssl_min_protocol_version"].value == "TLSv1.1"
    assert [r.end_ip_address for r in green.firewall_rules or ()] == ["255.255.255.255"]
    # The alert is scoped through module.db["blue"].server_id (a module output).
    assert [a.name for a in blue.metric_alerts or ()] == ["zep-blue-storage"]
    assert green.metric_alerts == ()
    (alert,) = blue.metric_alerts or ()
    assert alert.enabled is False
    assert alert.criteria[0].threshold is None  # dynamic threshold
    assert alert.scopes == (blue.id,)


def test_declared_parameters_are_overrides_and_the_rest_azure_defaults() -> None:
    reading = read(HANDWRITTEN / "prod-compliant.plan.json")
    parameters = server(reading, "zep-prod-db").parameters or {}
    extensions = parameters["azure.extensions"]
    assert (extensions.value, extensions.source) == (
        "VECTOR,PG_STAT_STATEMENTS,PGAUDIT",
        "user-override",
    )
    secure = parameters["require_secure_transport"]
    assert (secure.value, secure.source) == ("on", "system-default")
    # max_connections' default comes from the SKU's memory (E4ds_v5: 32 GiB).
    assert parameters["max_connections"].value == "3437"


def test_administrators_link_by_server_name_and_alerts_by_known_scope() -> None:
    reading = read(HANDWRITTEN / "prod-compliant.plan.json")
    pg = server(reading, "zep-prod-db")
    assert [a.principal_name for a in pg.administrators or ()] == ["zep-dba"]
    alerts = {a.name: a for a in pg.metric_alerts or ()}
    assert set(alerts) == {"zep-prod-connections", "zep-prod-storage"}
    assert alerts["zep-prod-connections"].criteria[0].threshold == 2700
    assert all(a.action_groups for a in alerts.values())


def test_replacements_and_deletions_are_changes_and_a_deleted_server_is_not_judged() -> None:
    reading = read(HANDWRITTEN / "replace.plan.json")
    assert [s.name for s in reading.section.servers] == ["zep-prod-db"]
    changes = {c.address: c for c in reading.origin.changes}
    assert changes["azurerm_postgresql_flexible_server.main"].actions == ("delete", "create")
    assert changes["azurerm_postgresql_flexible_server.main"].replace_paths == (
        "geo_redundant_backup_enabled",
    )
    assert changes["azurerm_postgresql_flexible_server.legacy"].actions == ("delete",)


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        IAC / "zodiacae" / "aks-demo.plan.json",
        HANDWRITTEN / "prod-compliant.plan.json",
        HANDWRITTEN / "unknowns.plan.json",
        HANDWRITTEN / "modules" / "plan.json",
    ],
    ids=lambda p: p.parent.name + "/" + p.name,
)
def test_passwords_and_sensitive_values_never_enter_the_snapshot(path: Path) -> None:
    reading = read(path)
    dumped = reading.section.model_dump_json() + reading.origin.model_dump_json()
    assert "P@ssword1234!" not in dumped
    assert "N0t-A-Real-Secret-42!" not in dumped
    assert "administratorLoginPassword" not in dumped


def test_a_sensitive_configuration_value_is_open_not_copied() -> None:
    reading = read(HANDWRITTEN / "unknowns.plan.json")
    pg = server(reading, "zep-uat-db")
    assert pg.parameters is not None
    assert pg.parameters["require_secure_transport"].value is None
    value = opened(reading, pg.id)["parameters/require_secure_transport/value"]
    assert value.reason == "marked sensitive in the plan, so never read"
