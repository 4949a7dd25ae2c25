"""ARM templates and compiled Bicep read into the Azure model; the template language evaluated
as far as the template and its parameters allow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engram_audit.collectors.iac.arm import TemplateReading, read_template, resolve_parameters
from engram_audit.collectors.iac.expressions import Scope, Unknown, parse
from engram_audit.errors import InputError
from engram_audit.model.snapshot import AzureServer
from tests.support.iac_cases import IAC

AVM = IAC / "avm-bicep" / "main.json"
BICEP = IAC / "handwritten" / "bicep"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def evaluate(expression: str, parameters: dict[str, Any] | None = None, **variables: Any) -> Any:
    return Scope(parameters=parameters or {}, variables=variables).value(expression)


def read(template: Path, parameters: Path | None = None) -> TemplateReading:
    return read_template(template, str(template), parameters)


def only_server(reading: TemplateReading) -> AzureServer:
    (server,) = reading.section.servers
    return server


def write(tmp_path: Path, template: dict[str, Any], name: str = "template.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"$schema": SCHEMA, **template}, indent=2), encoding="utf-8")
    return path


# --- the expression language --------------------------------------------------------------------


def test_functions_properties_and_indexes() -> None:
    assert evaluate("[concat('a', '-', string(1))]") == "a-1"
    assert evaluate("[format('{0}/{1}', 'pg', 'x')]") == "pg/x"
    assert evaluate("[createObject('a', createArray(1, 2)).a[1]]") == 2
    assert evaluate("[toLower(parameters('Tier'))]", {"tier": "GeneralPurpose"}) == "generalpurpose"
    assert evaluate("[variables('v').Name]", v={"name": "x"}) == "x"  # case-insensitive keys
    assert evaluate("[[literal]") == "[literal]"
    assert evaluate("[tryGet(createObject('a', 1), 'b')]") is None
    assert evaluate("[coalesce(null(), null(), 'x')]") == "x"
    assert evaluate("[union(createObject('a', 1), createObject('b', 2))]") == {"a": 1, "b": 2}
    assert evaluate("[length(split('a,b,c', ','))]") == 3
    assert evaluate(
        "[resourceId('Microsoft.DBforPostgreSQL/flexibleServers/configurations', 'pg', 'x')]"
    ) == (
        "/subscriptions/(deployment-subscription)/resourceGroups/(deployment-resource-group)"
        "/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg/configurations/x"
    )


def test_lambdas_map_filter_reduce() -> None:
    assert evaluate("[map(range(1, 3), lambda('x', mul(lambdaVariables('x'), 2)))]") == [2, 4, 6]
    assert evaluate(
        "[filter(createArray(1, 2, 3), lambda('x', greater(lambdaVariables('x'), 1)))]"
    ) == [2, 3]
    assert (
        evaluate(
            "[reduce(createArray(1, 2, 3), 0, lambda('cur', 'next', add(lambdaVariables('cur'), lambdaVariables('next'))))]"
        )
        == 6
    )


def test_what_only_deployment_knows_is_unknown_and_spreads_only_where_needed() -> None:
    unknown = evaluate("[uniqueString(resourceGroup().id)]")
    assert isinstance(unknown, Unknown)
    assert isinstance(evaluate("[reference('kv').keyUri]"), Unknown)
    assert isinstance(evaluate("[concat('a', subscription().tenantId)]"), Unknown)
    # An object keeps its known properties around an unknown one.
    built = evaluate("[createObject('type', 'AzureKeyVault', 'uri', reference('kv').keyUri)]")
    assert built["type"] == "AzureKeyVault" and isinstance(built["uri"], Unknown)
    assert evaluate("[empty(createObject('a', utcNow()))]") is False
    # if() with an unknown condition is known when both branches agree ...
    assert evaluate("[if(equals(utcNow(), 'x'), 'same', 'same')]") == "same"
    # ... and only the branch taken is evaluated: a fail() elsewhere is never reached.
    assert evaluate("[if(true(), 'ok', fail('never'))]") == "ok"
    assert isinstance(evaluate("[if(false(), 'ok', fail('stop'))]"), Unknown)
    # A function engram-audit does not implement is unknown, never guessed.
    assert "not evaluated" in evaluate("[base64ToString('eA==')]").reason


def test_invalid_syntax_is_unknown_with_the_reason() -> None:
    value = evaluate("[concat('a',]")
    assert isinstance(value, Unknown) and "not valid" in value.reason
    with pytest.raises(ValueError, match="not a function call"):
        parse("parameters")


def test_parameters_given_default_nullable_open_and_secure() -> None:
    declared = {
        "given": {"type": "string"},
        "byDefault": {"type": "string", "defaultValue": "[concat(parameters('given'), '-x')]"},
        "optional": {"type": "string", "nullable": True},
        "tier": {"type": "string", "allowedValues": ["Burstable", "GeneralPurpose"]},
        "flag": {"type": "bool"},
        "days": {"type": "int", "minValue": 7, "maxValue": 9},
        "password": {"type": "securestring"},
    }
    resolved = resolve_parameters(declared, {"given": "a", "password": "s3cret-value"})
    assert resolved["given"] == "a" and resolved["byDefault"] == "a-x"
    assert resolved["optional"] is None
    assert resolved["tier"].candidates == ("Burstable", "GeneralPurpose")
    assert resolved["flag"].candidates == (True, False)
    assert resolved["days"].candidates == (7, 8, 9)
    assert isinstance(resolved["password"], Unknown)
    assert "s3cret-value" not in repr(resolved)


# --- reading templates ------------------------------------------------------------------------


def test_not_a_template_or_another_language_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"languageVersion '3\.0' cannot be read"):
        read(write(tmp_path, {"languageVersion": "3.0", "resources": {}}))
    parameters = tmp_path / "p.json"
    parameters.write_text(
        json.dumps(
            {
                "$schema": SCHEMA.replace("deploymentTemplate", "deploymentParameters"),
                "resources": [],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="a parameters file, not a template"):
        read(parameters)
    with pytest.raises(InputError, match="not an ARM template"):
        read(write(tmp_path, {"parameters": {}}))


def test_compiled_avm_module_with_its_e2e_parameters() -> None:
    reading = read(AVM, IAC / "avm-bicep" / "parameters" / "waf-aligned.parameters.json")
    server = only_server(reading)
    assert server.name == "dpsfswaf001"
    properties = server.resource["properties"]
    assert properties["authConfig"] == {
        "activeDirectoryAuth": "Enabled",
        "passwordAuth": "Disabled",
    }
    assert properties["network"]["publicNetworkAccess"] == "Disabled"
    assert properties["network"]["delegatedSubnetResourceId"].endswith("/subnets/defaultSubnet")
    assert properties["highAvailability"]["mode"] == "ZoneRedundant"
    # Configurations, administrators: nested deployments (inner scope) inside copy loops.
    assert server.parameters is not None
    assert server.parameters["log_min_messages"].value == "INFO"
    assert server.parameters["autovacuum_naptime"].value == "80"
    assert [a.principal_name for a in server.administrators or ()] == ["dep-msi"]
    assert reading.origin.tool == "bicep 0.45.6.27763"
    assert reading.origin.format_version == "2.0"
    resources = {r.address: r for r in reading.origin.resources}
    assert resources["flexibleServer"].file == str(AVM)
    number = resources["flexibleServer"].line
    assert number is not None
    line = AVM.read_text(encoding="utf-8").splitlines()[number - 1]
    assert '"flexibleServer": {' in line
    assert "flexibleServer_configurations[1]/configuration" in resources


def test_customer_managed_key_from_an_existing_key_vault_is_still_a_customer_key() -> None:
    """The key URI is reference() of an existing key: unknown; the type is not."""
    reading = read(AVM, IAC / "avm-bicep" / "parameters" / "max.parameters.json")
    encryption = only_server(reading).resource["properties"]["dataEncryption"]
    assert encryption["type"] == "AzureKeyVault"
    assert "primaryKeyURI" not in encryption


def test_secure_parameters_and_the_password_never_enter_the_snapshot() -> None:
    for template, parameters in (
        (AVM, IAC / "avm-bicep" / "parameters" / "max.parameters.json"),
        (BICEP / "main.json", BICEP / "main.parameters.json"),
    ):
        reading = read(template, parameters)
        dumped = reading.section.model_dump_json() + reading.origin.model_dump_json()
        assert "N0t-A-Real-Secret-42!" not in dumped
        assert "administratorLoginPassword" not in dumped


def test_hand_written_bicep_nested_child_copy_loop_module_and_alert() -> None:
    reading = read(BICEP / "main.json", BICEP / "main.parameters.json")
    server = only_server(reading)
    assert server.parameters is not None
    assert server.parameters["azure.extensions"].value == "VECTOR"  # pg::extensions
    assert server.parameters["require_secure_transport"].value == "off"  # the tls module
    assert [(r.name, r.start_ip_address) for r in server.firewall_rules or ()] == [
        ("office", "203.0.113.0")
    ]
    (alert,) = server.metric_alerts or ()
    assert alert.scopes == (server.id,)  # resourceId() placeholder ids match the server's
    assert alert.criteria[0].threshold == 95
    addresses = {r.address for r in reading.origin.resources}
    assert {"pg", "pg::extensions", "rules[0]", "tls/resources[0]", "storageAlert"} <= addresses


def test_classic_template_nested_children_and_outer_scope_deployment(tmp_path: Path) -> None:
    template = {
        "contentVersion": "1.0.0.0",
        "parameters": {"serverName": {"type": "string", "defaultValue": "pg-classic"}},
        "variables": {"rules": [{"n": "a", "s": "10.0.0.1", "e": "10.0.0.9"}]},
        "resources": [
            {
                "type": "Microsoft.DBforPostgreSQL/flexibleServers",
                "apiVersion": "2024-08-01",
                "name": "[parameters('serverName')]",
                "sku": {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"},
                "properties": {"version": "16", "administratorLoginPassword": "literal-Secret-99"},
                "resources": [
                    {
                        "type": "configurations",
                        "apiVersion": "2024-08-01",
                        "name": "azure.extensions",
                        "properties": {"value": "VECTOR"},
                    }
                ],
            },
            {
                "copy": {"name": "loop", "count": "[length(variables('rules'))]"},
                "type": "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules",
                "apiVersion": "2024-08-01",
                "name": "[concat(parameters('serverName'), '/', variables('rules')[copyIndex()].n)]",
                "properties": {
                    "startIpAddress": "[variables('rules')[copyIndex('loop')].s]",
                    "endIpAddress": "[variables('rules')[copyIndex()].e]",
                },
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "outer",
                "properties": {
                    "mode": "Incremental",
                    "template": {
                        "$schema": SCHEMA,
                        "contentVersion": "1.0.0.0",
                        "resources": [
                            {
                                "type": "Microsoft.DBforPostgreSQL/flexibleServers/configurations",
                                "apiVersion": "2024-08-01",
                                "name": "[concat(parameters('serverName'), '/require_secure_transport')]",
                                "properties": {"value": "on"},
                            }
                        ],
                    },
                },
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "linked",
                "properties": {
                    "mode": "Incremental",
                    "templateLink": {"uri": "https://example.invalid/t.json"},
                },
            },
        ],
    }
    reading = read(write(tmp_path, template))
    server = only_server(reading)
    assert server.parameters is not None
    assert server.parameters["azure.extensions"].value == "VECTOR"
    assert server.parameters["require_secure_transport"].value == "on"
    assert [
        (r.name, r.start_ip_address, r.end_ip_address) for r in server.firewall_rules or ()
    ] == [("a", "10.0.0.1", "10.0.0.9")]
    assert "literal-Secret-99" not in server.model_dump_json()
    (issue,) = reading.issues
    assert "linked template" in issue.reason
    # No absent default is guessed: autoGrow and public access are open, retention is Azure's.
    open_paths = {"/".join(v.path) for v in reading.origin.planned if v.state == "unknown"}
    assert "resource/properties/storage/autoGrow" in open_paths
    assert "resource/properties/network/publicNetworkAccess" in open_paths
    assert server.resource["properties"]["backup"]["backupRetentionDays"] == 7


def test_a_child_deployed_only_under_an_open_condition_is_an_issue(tmp_path: Path) -> None:
    template = {
        "contentVersion": "1.0.0.0",
        "parameters": {"withRule": {"type": "bool"}},
        "resources": [
            {
                "type": "Microsoft.DBforPostgreSQL/flexibleServers",
                "apiVersion": "2024-08-01",
                "name": "pg",
                "sku": {"name": "Standard_B1ms", "tier": "Burstable"},
                "properties": {"version": "16"},
            },
            {
                "condition": "[parameters('withRule')]",
                "type": "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules",
                "apiVersion": "2024-08-01",
                "name": "pg/all",
                "properties": {"startIpAddress": "0.0.0.0", "endIpAddress": "255.255.255.255"},
            },
        ],
    }
    reading = read(write(tmp_path, template))
    (issue,) = reading.issues
    assert issue.part == "firewall_rules"
    assert "withRule" in issue.reason
