"""Terraform plans (``terraform show -json``, Terraform 1.x and OpenTofu) as planned state.

What is read (Terraform's "JSON Output Format", developer.hashicorp.com/terraform/internals/
json-format): ``format_version`` (1.x; another major is refused), ``resource_changes[]`` with
``change.actions``, ``after``, ``after_unknown``, ``after_sensitive`` and ``replace_paths``,
``planned_values.root_module`` and its ``child_modules`` for instances a plan lists only there,
``prior_state`` for the subscription, and ``configuration`` for two things values cannot say:
whether an attribute was declared at all, and which server a child resource refers to when the
reference is an expression known only after apply (``server_id =
azurerm_postgresql_flexible_server.main.id``).

Mapping (attribute names and defaults from the azurerm provider's documentation and schema,
website/docs/r/*.html.markdown and internal/services/postgres @ 69697b7):

| azurerm | snapshot |
|---|---|
| ``azurerm_postgresql_flexible_server`` ``sku_name`` ``GP_Standard_D2s_v3`` | ``sku.tier`` GeneralPurpose (``B_`` Burstable, ``MO_`` MemoryOptimized), ``sku.name`` Standard_D2s_v3 |
| ``storage_mb`` | ``storage.storageSizeGB`` (MB / 1024); not declared on create: 32768 MB, as the provider creates it |
| ``auto_grow_enabled``, ``geo_redundant_backup_enabled``, ``public_network_access_enabled`` | ``storage.autoGrow``, ``backup.geoRedundantBackup``, ``network.publicNetworkAccess`` (provider defaults false, false, true) |
| ``version``, ``backup_retention_days`` | ``version``; ``backup.backupRetentionDays`` (not declared: Azure's 7) |
| ``high_availability { mode }`` | ``highAvailability.mode``; no block: Disabled, as the provider sends it |
| ``authentication { active_directory_auth_enabled, password_auth_enabled }`` | ``authConfig``; no block: Azure's default (Entra off, password on) |
| ``customer_managed_key { key_vault_key_id }`` | ``dataEncryption.type`` AzureKeyVault; no block: service-managed keys |
| ``_configuration`` ``name``/``value`` | ``parameters`` |
| ``_firewall_rule``, ``_active_directory_administrator`` | ``firewall_rules``, ``administrators`` |
| ``azurerm_monitor_metric_alert`` ``scopes``, ``criteria``, ``dynamic_criteria``, ``action``, ``enabled``, ``severity`` | ``metric_alerts`` of each server its scopes cover |

Only these attributes are read: ``administrator_password`` and every value Terraform marks
sensitive never reach the snapshot (a sensitive value a check needs is open, like an unknown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram_audit.collectors.iac.build import (
    UNKNOWN_TEXT,
    DeclaredParameter,
    ServerDraft,
    finish,
    input_file,
    put,
    server_id,
    switch,
)
from engram_audit.collectors.iac.domains import (
    AUTH_CONFIGS,
    DATA_ENCRYPTION,
    IP_PROBES,
    STORAGE_GB,
    SWITCH,
    THRESHOLD_PROBES,
)
from engram_audit.errors import InputError, Problem
from engram_audit.inputs.json_source import load_json_document
from engram_audit.model.base import Source
from engram_audit.model.snapshot import (
    AlertCriterion,
    AzureSection,
    CollectionIssue,
    EntraAdministrator,
    FirewallRule,
    MetricAlert,
    PlannedChange,
    PlannedResource,
    SnapshotOrigin,
)
from engram_audit.model.values import as_bool, as_float, as_int, resource_id_covers

SERVER = "azurerm_postgresql_flexible_server"
CONFIGURATION = "azurerm_postgresql_flexible_server_configuration"
FIREWALL_RULE = "azurerm_postgresql_flexible_server_firewall_rule"
ADMINISTRATOR = "azurerm_postgresql_flexible_server_active_directory_administrator"
METRIC_ALERT = "azurerm_monitor_metric_alert"
TYPES = (SERVER, CONFIGURATION, FIREWALL_RULE, ADMINISTRATOR, METRIC_ALERT)
UNKNOWN_REASON = "unknown until apply"
SENSITIVE_REASON = "marked sensitive in the plan, so never read"
_SUBSCRIPTION = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})/", re.IGNORECASE)
_UNKNOWN_SUBSCRIPTION = "(known-after-apply)"


@dataclass(frozen=True)
class Attribute:
    """An ``azurerm_postgresql_flexible_server`` attribute and the server resource path (ARM's
    shape, the snapshot's) its value fills. The reader maps with these, and a fix of planned
    state names the attribute for a path (``collectors.iac.fixes``).

    ``kind`` says how a value is written: ``text`` and ``number`` as they are, ``switch`` as
    ``true``/``false`` for Enabled/Disabled, ``megabytes`` for GB, ``sku`` as the ``B_``/``GP_``/
    ``MO_`` tier prefix and name, ``key`` for a block whose presence is the setting.
    """

    name: str  # as azurerm spells it; a block's attribute as block.attribute
    path: tuple[str, ...]  # under the server resource
    kind: str = "text"
    forces_new: str = ""  # when changing it replaces the server: the provider docs' words


# azurerm_postgresql_flexible_server's arguments and their "forces a new ... to be created"
# notes as website/docs/r/postgresql_flexible_server.html.markdown @ 69697b7 spells them.
SKU_NAME = Attribute("sku_name", ("sku", "name"), "sku")
SKU_TIER = Attribute("sku_name", ("sku", "tier"), "sku")
VERSION = Attribute(
    "version",
    ("properties", "version"),
    forces_new="downgrading version is not supported and forces a new server",
)
STORAGE_MB = Attribute(
    "storage_mb",
    ("properties", "storage", "storageSizeGB"),
    "megabytes",
    forces_new="scaling storage_mb down forces a new server",
)
AUTO_GROW = Attribute("auto_grow_enabled", ("properties", "storage", "autoGrow"), "switch")
RETENTION = Attribute(
    "backup_retention_days", ("properties", "backup", "backupRetentionDays"), "number"
)
GEO_BACKUP = Attribute(
    "geo_redundant_backup_enabled",
    ("properties", "backup", "geoRedundantBackup"),
    "switch",
    forces_new="changing geo_redundant_backup_enabled forces a new server",
)
HA_MODE = Attribute("high_availability.mode", ("properties", "highAvailability", "mode"))
PUBLIC_ACCESS = Attribute(
    "public_network_access_enabled", ("properties", "network", "publicNetworkAccess"), "switch"
)
ENTRA = Attribute(
    "authentication.active_directory_auth_enabled",
    ("properties", "authConfig", "activeDirectoryAuth"),
    "switch",
)
PASSWORD_AUTH = Attribute(
    "authentication.password_auth_enabled", ("properties", "authConfig", "passwordAuth"), "switch"
)
CUSTOMER_MANAGED_KEY = Attribute(
    "customer_managed_key.key_vault_key_id",
    ("properties", "dataEncryption", "type"),
    "key",
    forces_new="changing customer_managed_key forces a new server",
)
SERVER_ATTRIBUTES = (
    SKU_NAME,
    SKU_TIER,
    VERSION,
    STORAGE_MB,
    AUTO_GROW,
    RETENTION,
    GEO_BACKUP,
    HA_MODE,
    PUBLIC_ACCESS,
    ENTRA,
    PASSWORD_AUTH,
    CUSTOMER_MANAGED_KEY,
)
SKU_TIERS = {"B": "Burstable", "GP": "GeneralPurpose", "MO": "MemoryOptimized"}
# azurerm's storage_mb values (website/docs/r/postgresql_flexible_server.html.markdown @ 69697b7).
STORAGE_MB_VALUES = (
    32768,
    65536,
    131072,
    262144,
    524288,
    1048576,
    2097152,
    4193280,
    4194304,
    8388608,
    16777216,
    33553408,
)


class _Marker:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<{self.reason}>"


UNKNOWN = _Marker(UNKNOWN_REASON)
SENSITIVE = _Marker(SENSITIVE_REASON)
Declared = Callable[[str], bool | None]  # whether the configuration declares an attribute


def _merge(after: Any, unknown: Any, sensitive: Any) -> Any:
    """``after`` with unknown leaves as UNKNOWN and sensitive ones as SENSITIVE (never their value)."""
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    if isinstance(after, dict) or isinstance(unknown, dict) or isinstance(sensitive, dict):
        after_map = after if isinstance(after, dict) else {}
        unknown_map = unknown if isinstance(unknown, dict) else {}
        sensitive_map = sensitive if isinstance(sensitive, dict) else {}
        keys = list(after_map) + [k for k in unknown_map if k not in after_map]
        return {
            key: _merge(after_map.get(key), unknown_map.get(key), sensitive_map.get(key))
            for key in keys
        }
    if isinstance(after, list) or isinstance(unknown, list):
        after_list = after if isinstance(after, list) else []
        unknown_list = unknown if isinstance(unknown, list) else []
        sensitive_list = sensitive if isinstance(sensitive, list) else []
        length = max(len(after_list), len(unknown_list))
        return [
            _merge(
                after_list[i] if i < len(after_list) else None,
                unknown_list[i] if i < len(unknown_list) else None,
                sensitive_list[i] if i < len(sensitive_list) else None,
            )
            for i in range(length)
        ]
    return after


def _known(value: Any) -> bool:
    return not isinstance(value, _Marker) and value is not None


def _reason(value: Any) -> str:
    return value.reason if isinstance(value, _Marker) else UNKNOWN_REASON


# --- addresses --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """``module.a["x"].module.b.azurerm_x.y[0]`` taken apart."""

    text: str
    modules: tuple[tuple[str, str | None], ...]  # (call name, instance key text)
    type: str
    name: str
    index: str | None

    @property
    def module_prefix(self) -> str:
        return "".join(
            f"module.{call}" + (f"[{key}]" if key is not None else "") + "."
            for call, key in self.modules
        )

    @property
    def calls(self) -> tuple[str, ...]:
        return tuple(call for call, _ in self.modules)

    @property
    def block(self) -> str:
        """The resource block, without module path or instance key: ``azurerm_x.y``."""
        return f"{self.type}.{self.name}"


def _bracket(text: str, start: int) -> int:
    """Index just past the ``]`` closing the ``[`` at ``start`` (quotes respected)."""
    depth, quoted, i = 0, False, start
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _parts(text: str) -> list[tuple[str, str | None]]:
    """``a.b[0].c`` -> [(a, None), (b, "0"), (c, None)]."""
    parts: list[tuple[str, str | None]] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] not in ".[":
            j += 1
        name = text[i:j]
        key = None
        if j < len(text) and text[j] == "[":
            end = _bracket(text, j)
            key = text[j + 1 : end - 1]
            j = end
        parts.append((name, key))
        i = j + 1 if j < len(text) and text[j] == "." else j
    return parts


def parse_address(text: str) -> Address | None:
    parts = _parts(text)
    modules: list[tuple[str, str | None]] = []
    i = 0
    while i + 1 < len(parts) and parts[i][0] == "module":
        modules.append((parts[i + 1][0], parts[i + 1][1]))
        i += 2
    rest = parts[i:]
    if rest and rest[0][0] == "data":
        rest = rest[1:]
    if len(rest) < 2:
        return None
    return Address(text, tuple(modules), rest[0][0], rest[1][0], rest[1][1])


# --- configuration ----------------------------------------------------------------------------


@dataclass
class _Config:
    """The plan's ``configuration``: modules by call path, and the root variables."""

    root: Mapping[str, Any]
    variables: Mapping[str, Any]

    def module(self, calls: tuple[str, ...]) -> Mapping[str, Any] | None:
        module: Any = self.root
        for call in calls:
            module = _dict(_dict(_dict(module).get("module_calls")).get(call)).get("module")
            if not isinstance(module, dict):
                return None
        return module if isinstance(module, dict) else None

    def resource(self, address: Address) -> Mapping[str, Any]:
        module = self.module(address.calls)
        for resource in _list(_dict(module).get("resources")):
            if _dict(resource).get("type") == address.type and resource.get("name") == address.name:
                return _dict(resource)
        return {}

    def declared(self, calls: tuple[str, ...], expression: Any) -> bool | None:
        """Whether an attribute's expression gives it a value: False when it is absent or comes
        only from variables that are null; None when other references decide at apply."""
        if not isinstance(expression, dict):
            return expression is not None
        if "constant_value" in expression:
            return expression["constant_value"] is not None
        references = [str(r) for r in _list(expression.get("references"))]
        names = {r.split(".")[1] for r in references if r.startswith("var.") and "." in r}
        if not references or len(names) != 1 or not all(r.startswith("var.") for r in references):
            return None
        return self._variable(calls, names.pop())

    def _variable(self, calls: tuple[str, ...], name: str) -> bool | None:
        if not calls:
            variable = self.variables.get(name)
            if not isinstance(variable, dict) or "value" not in variable:
                return None
            return variable["value"] is not None
        parent = self.module(calls[:-1])
        call = _dict(_dict(_dict(parent).get("module_calls")).get(calls[-1]))
        expression = _dict(call.get("expressions")).get(name)
        if expression is None:
            variable = _dict(_dict(_dict(call.get("module")).get("variables")).get(name))
            return variable.get("default") is not None
        return self.declared(calls[:-1], expression)

    def references(self, address: Address, attribute: str) -> list[str]:
        expressions = _dict(self.resource(address).get("expressions"))
        expression = expressions.get(attribute)
        if isinstance(expression, list):  # a block: its expressions' references
            found: list[str] = []
            for block in expression:
                for value in _dict(block).values():
                    found += [str(r) for r in _list(_dict(value).get("references"))]
            return found
        return [str(r) for r in _list(_dict(expression).get("references"))]

    def output_references(self, calls: tuple[str, ...], output: str) -> list[str]:
        module = self.module(calls)
        expression = _dict(_dict(_dict(_dict(module).get("outputs")).get(output)).get("expression"))
        return [str(r) for r in _list(expression.get("references"))]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- reading the plan ---------------------------------------------------------------------------


@dataclass
class Instance:
    address: Address
    actions: tuple[str, ...]
    after: dict[str, Any]
    before: dict[str, Any]
    replace_paths: tuple[str, ...] = ()

    @property
    def deleted(self) -> bool:
        return "delete" in self.actions and "create" not in self.actions


def load_plan(path: Path, display: str) -> dict[str, Any]:
    """The plan document; anything that is not ``terraform show -json`` of a plan, format 1.x,
    is an input error saying so."""
    # The same bounded, strict JSON reader as snapshots and reports (a plan is hostile input).
    document = load_json_document(path, display).data
    if not isinstance(document, dict):
        raise InputError([Problem(display, 1, 1, "", "a Terraform plan is a JSON object")])
    version = document.get("format_version")
    if not isinstance(version, str):
        what = (
            "a Terraform state, not a plan: run terraform show -json PLANFILE"
            if "values" in document and "planned_values" not in document
            else "not terraform show -json output of a plan (no format_version)"
        )
        raise InputError([Problem(display, 1, 1, "format_version", what)])
    major = version.split(".", 1)[0]
    if major != "1":
        raise InputError(
            [
                Problem(
                    display,
                    1,
                    1,
                    "format_version",
                    f"plan format_version {version!r} cannot be read: this engram-audit reads "
                    "Terraform's JSON plan format 1.x (terraform show -json of Terraform 1.x or "
                    "OpenTofu)",
                )
            ]
        )
    if "planned_values" not in document and "resource_changes" not in document:
        raise InputError(
            [
                Problem(
                    display,
                    1,
                    1,
                    "",
                    "a Terraform state, not a plan: run terraform show -json PLANFILE",
                )
            ]
        )
    return document


def _planned_values(module: Any) -> Iterator[dict[str, Any]]:
    for resource in _list(_dict(module).get("resources")):
        if isinstance(resource, dict):
            yield resource
    for child in _list(_dict(module).get("child_modules")):
        yield from _planned_values(child)


def instances(document: Mapping[str, Any]) -> list[Instance]:
    """Every managed instance of the types read, from resource_changes (and planned_values
    for any only listed there)."""
    found: dict[str, Instance] = {}
    for change in _list(document.get("resource_changes")):
        change = _dict(change)
        if change.get("mode", "managed") != "managed" or change.get("type") not in TYPES:
            continue
        if change.get("deposed"):
            continue
        address = parse_address(str(change.get("address", "")))
        if address is None:
            continue
        body = _dict(change.get("change"))
        actions = tuple(str(a) for a in _list(body.get("actions")))
        after = _merge(body.get("after"), body.get("after_unknown"), body.get("after_sensitive"))
        before = _merge(body.get("before"), None, body.get("before_sensitive"))
        replace = tuple(
            ".".join(str(step) for step in _list(path)) for path in _list(body.get("replace_paths"))
        )
        found[address.text] = Instance(address, actions, _dict(after), _dict(before), replace)
    root = _dict(document.get("planned_values")).get("root_module")
    for resource in _planned_values(root):
        if resource.get("mode", "managed") != "managed" or resource.get("type") not in TYPES:
            continue
        address = parse_address(str(resource.get("address", "")))
        if address is None or address.text in found:
            continue
        values = _merge(resource.get("values"), None, resource.get("sensitive_values"))
        found[address.text] = Instance(address, ("no-op",), _dict(values), _dict(values))
    return [found[key] for key in sorted(found)]


def _subscription(document: Mapping[str, Any]) -> str | None:
    """The one subscription every known resource id in the plan names, if there is one."""
    sources = [document.get("prior_state"), document.get("planned_values")]
    found = {m.group(1).casefold() for m in _SUBSCRIPTION.finditer(json.dumps(sources))}
    return found.pop() if len(found) == 1 else None


# --- mapping ------------------------------------------------------------------------------------


@dataclass
class PlanReading:
    section: AzureSection
    origin: SnapshotOrigin
    issues: tuple[CollectionIssue, ...]
    empty_reason: str = f"the plan declares no {SERVER}"


@dataclass
class _Reader:
    document: Mapping[str, Any]
    config: _Config
    subscription: str | None
    drafts: dict[str, ServerDraft] = field(default_factory=dict)  # by address
    issues: list[CollectionIssue] = field(default_factory=list)
    changes: list[PlannedChange] = field(default_factory=list)
    alert_resources: list[PlannedResource] = field(default_factory=list)

    # -- servers --

    def server(self, instance: Instance) -> ServerDraft:
        after, address = instance.after, instance.address
        expressions = _dict(self.config.resource(address).get("expressions"))
        calls = address.calls

        def declared(attribute: str) -> bool | None:
            return self.config.declared(calls, expressions.get(attribute))

        name = after.get("name")
        group = after.get("resource_group_name")
        known_id = after.get("id")
        if _known(known_id):
            identity = str(known_id)
            subscription = identity.split("/")[2] if identity.count("/") > 2 else "unknown"
        else:
            subscription = self.subscription or _UNKNOWN_SUBSCRIPTION
            identity = server_id(
                subscription,
                str(group) if _known(group) else UNKNOWN_TEXT,
                str(name) if _known(name) else address.text,
            )
        draft = ServerDraft(
            id=identity,
            name=str(name) if _known(name) else address.text,
            resource_group=str(group) if _known(group) else UNKNOWN_TEXT,
            subscription_id=subscription,
            address=address.text,
            body={"type": "Microsoft.DBforPostgreSQL/flexibleServers", "properties": {}},
        )
        if _known(name):
            draft.body["name"] = str(name)
        if _known(after.get("location")):
            draft.body["location"] = str(after["location"])
        draft.declare(identity, address.text, None, None)
        properties: dict[str, Any] = draft.body["properties"]
        self._sku(draft, after.get("sku_name"))
        self._version(draft, after, declared)
        self._storage(draft, after, declared)
        self._backup(draft, after, declared)
        self._ha(draft, after, declared)
        self._network(draft, after, declared)
        self._authentication(draft, after, expressions)
        self._encryption(draft, after, expressions)
        for attribute, key in (("create_mode", "createMode"), ("zone", "availabilityZone")):
            if _known(after.get(attribute)):
                properties[key] = str(after[attribute])
        return draft

    def _open(self, draft: ServerDraft, path: tuple[str, ...], attribute: str, value: Any) -> None:
        draft.open_value(("resource", *path), attribute, _reason(value))

    def _sku(self, draft: ServerDraft, value: Any) -> None:
        if not _known(value):
            self._open(draft, SKU_NAME.path, SKU_NAME.name, value)
            self._open(draft, SKU_TIER.path, SKU_TIER.name, value)
            return
        prefix, _, name = str(value).partition("_")
        tier = SKU_TIERS.get(prefix)
        draft.body["sku"] = {"name": name or str(value)}
        if tier is None:
            draft.open_value(
                ("resource", *SKU_TIER.path),
                SKU_TIER.name,
                f"sku_name {value!r} has no B_, GP_ or MO_ tier prefix (azurerm's <tier>_<name>)",
            )
        else:
            draft.body["sku"]["tier"] = tier

    def _version(self, draft: ServerDraft, after: Mapping[str, Any], declared: Declared) -> None:
        value = after.get(VERSION.name)
        if _known(value):
            put(draft.body, VERSION.path, str(value))
            return
        reason = _reason(value)
        if value is None or declared(VERSION.name) is False:
            reason = "not declared (azurerm requires it when create_mode is Default)"
        draft.open_value(("resource", *VERSION.path), VERSION.name, reason)

    def _storage(self, draft: ServerDraft, after: Mapping[str, Any], declared: Declared) -> None:
        value = after.get(STORAGE_MB.name)
        path = STORAGE_MB.path
        megabytes = as_int(value) if _known(value) else None
        if megabytes is not None:
            put(draft.body, path, megabytes // 1024)
        elif declared(STORAGE_MB.name) is False:
            put(draft.body, path, 32)
            draft.default_value(
                ("resource", *path),
                STORAGE_MB.name,
                "not declared: Azure default as the azurerm provider creates it, 32768 MB",
                STORAGE_GB,
            )
        else:
            self._open(draft, path, STORAGE_MB.name, value)
        self._switch(draft, after, AUTO_GROW, declared, "false")

    def _switch(
        self,
        draft: ServerDraft,
        after: Mapping[str, Any],
        mapped: Attribute,
        declared: Declared,
        provider_default: str,
    ) -> None:
        attribute, path = mapped.name, mapped.path
        value = after.get(attribute)
        state = switch(value) if _known(value) else None
        if state is None:
            self._open(draft, path, attribute, value)
            return
        put(draft.body, path, state)
        if declared(attribute) is False:
            draft.default_value(
                ("resource", *path),
                attribute,
                f"not declared: Azure default as the azurerm provider sets it ({attribute} = "
                f"{provider_default})",
                SWITCH,
            )

    def _backup(self, draft: ServerDraft, after: Mapping[str, Any], declared: Declared) -> None:
        value = after.get(RETENTION.name)
        path = RETENTION.path
        days = as_int(value) if _known(value) else None
        if days is not None:
            put(draft.body, path, days)
        elif declared(RETENTION.name) is False:
            put(draft.body, path, 7)
            draft.default_value(
                ("resource", *path),
                RETENTION.name,
                "not declared: Azure default, 7 days (models.tsp Backup.backupRetentionDays = 7)",
                tuple(range(1, 36)),
            )
        else:
            self._open(draft, path, RETENTION.name, value)
        self._switch(draft, after, GEO_BACKUP, declared, "false")

    def _ha(self, draft: ServerDraft, after: Mapping[str, Any], declared: Declared) -> None:
        block_name, _, mode_name = HA_MODE.name.partition(".")
        blocks = after.get(block_name)
        path = HA_MODE.path[:-1]
        if isinstance(blocks, _Marker):
            self._open(draft, path, block_name, blocks)
            return
        block = _dict(blocks[0]) if isinstance(blocks, list) and blocks else None
        if block is None:
            put(draft.body, HA_MODE.path, "Disabled")
            draft.default_value(
                ("resource", *HA_MODE.path),
                block_name,
                "not declared: Azure default, HA Disabled (the azurerm provider sends mode "
                "Disabled without the block)",
                ("Disabled", "ZoneRedundant", "SameZone"),
            )
            return
        mode = block.get(mode_name)
        if _known(mode):
            put(draft.body, HA_MODE.path, str(mode))
        else:
            self._open(draft, HA_MODE.path, HA_MODE.name, mode)

    def _network(self, draft: ServerDraft, after: Mapping[str, Any], declared: Declared) -> None:
        self._switch(draft, after, PUBLIC_ACCESS, declared, "true")
        subnet = after.get("delegated_subnet_id")
        if subnet is not None:
            put(
                draft.body,
                ("properties", "network", "delegatedSubnetResourceId"),
                str(subnet) if _known(subnet) else UNKNOWN_TEXT,
            )

    def _authentication(
        self, draft: ServerDraft, after: Mapping[str, Any], expressions: Mapping[str, Any]
    ) -> None:
        blocks = after.get("authentication")
        path = ("resource", "properties", "authConfig")
        if isinstance(blocks, _Marker) and "authentication" in expressions:
            draft.open_value(path, "authentication", blocks.reason, candidates=AUTH_CONFIGS)
            return
        block = _dict(blocks[0]) if isinstance(blocks, list) and blocks else None
        if block is None:
            # No block (or a computed one the configuration does not declare): the provider
            # sends no authConfig and Azure's default applies.
            put(
                draft.body,
                ("properties", "authConfig"),
                {"activeDirectoryAuth": "Disabled", "passwordAuth": "Enabled"},
            )
            draft.default_value(
                path,
                "authentication",
                "not declared: Azure default, Entra authentication off and password "
                "authentication on",
                AUTH_CONFIGS,
            )
            return
        config: dict[str, Any] = {}
        for mapped in (ENTRA, PASSWORD_AUTH):
            key = mapped.path[-1]
            value = block.get(mapped.name.partition(".")[2])
            state = switch(value) if _known(value) else None
            if state is None:
                draft.open_value((*path, key), mapped.name, _reason(value))
            else:
                config[key] = state
        put(draft.body, ("properties", "authConfig"), config)

    def _encryption(
        self, draft: ServerDraft, after: Mapping[str, Any], expressions: Mapping[str, Any]
    ) -> None:
        block_name, _, key_name = CUSTOMER_MANAGED_KEY.name.partition(".")
        blocks = after.get(block_name)
        path = ("resource", "properties", "dataEncryption")
        if isinstance(blocks, _Marker):
            draft.open_value(path, block_name, blocks.reason, candidates=DATA_ENCRYPTION)
            return
        block = _dict(blocks[0]) if isinstance(blocks, list) and blocks else None
        if block is None:
            draft.default_value(
                path,
                block_name,
                "not declared: Azure default, service-managed keys",
                DATA_ENCRYPTION,
            )
            return
        key = block.get(key_name)
        put(
            draft.body,
            ("properties", "dataEncryption"),
            {"type": "AzureKeyVault", "primaryKeyURI": str(key) if _known(key) else UNKNOWN_TEXT},
        )

    # -- which server a child resource belongs to --

    def server_for(self, instance: Instance, attribute: str) -> ServerDraft | str | None:
        """The planned server a child refers to; None: a server outside this plan; a string:
        why it cannot be told."""
        value = instance.after.get(attribute)
        if _known(value) and attribute == "server_id":
            for draft in self.drafts.values():
                if draft.id.casefold() == str(value).casefold():
                    return draft
            return None
        found = self._by_reference(instance.address, attribute)
        if isinstance(found, ServerDraft) or found is None:
            return found
        if len(self.drafts) == 1:
            return next(iter(self.drafts.values()))
        return found

    def _by_reference(self, address: Address, attribute: str) -> ServerDraft | str | None:
        references = self.config.references(address, attribute)
        targets = self._resolve(address.modules, address.index, references)
        if len(targets) == 1:
            return targets[0]
        if len(targets) > 1:
            return f"{address.text}.{attribute} refers to several servers"
        return f"cannot tell which server {address.text} belongs to: its {attribute} is known only after apply"

    def _resolve(
        self,
        modules: tuple[tuple[str, str | None], ...],
        own_index: str | None,
        references: list[str],
    ) -> list[ServerDraft]:
        prefix = "".join(
            f"module.{call}" + (f"[{key}]" if key is not None else "") + "."
            for call, key in modules
        )
        repeated = "each.key" in references or "count.index" in references
        for reference in references:
            parts = _parts(reference)
            if parts and parts[0][0] == "module" and len(parts) >= 3:
                call, key = parts[1]
                inner = self.config.output_references(
                    (*tuple(c for c, _ in modules), call), parts[2][0]
                )
                found = self._resolve((*modules, (call, key)), None, inner)
                if found:
                    return found
                continue
            if len(parts) < 2 or parts[0][0] != SERVER:
                continue
            base = f"{prefix}{SERVER}.{parts[1][0]}"
            key = parts[1][1]
            if key is None and repeated and own_index is not None:
                key = own_index
            if key is not None:
                return [d for text, d in self.drafts.items() if text == f"{base}[{key}]"]
            if base in self.drafts:
                return [self.drafts[base]]
            return [d for text, d in self.drafts.items() if text.startswith(base + "[")]
        return []

    # -- children --

    def configuration(self, instance: Instance) -> None:
        draft = self._child_server(instance, "server_id", "parameters")
        if draft is None:
            return
        name = instance.after.get("name")
        if not _known(name):
            draft.issue(
                "parameters",
                f"{instance.address.text}: the parameter's name is {_reason(name)}",
            )
            return
        value = instance.after.get("value")
        parameter = DeclaredParameter(
            value=str(value) if _known(value) else None,
            address=instance.address.text,
            attribute=f"{instance.address.text}.value",
        )
        if not _known(value):
            parameter.open_reason = _reason(value)
        draft.parameters[str(name)] = parameter
        draft.declare(f"{draft.id}/configurations/{name}", instance.address.text, None, None)

    def firewall_rule(self, instance: Instance) -> None:
        draft = self._child_server(instance, "server_id", "firewall_rules")
        if draft is None:
            return
        after = instance.after
        name = str(after["name"]) if _known(after.get("name")) else instance.address.text
        addresses = {}
        for attribute in ("start_ip_address", "end_ip_address"):
            value = after.get(attribute)
            addresses[attribute] = str(value) if _known(value) else UNKNOWN_TEXT
            if not _known(value):
                draft.open_value(
                    ("firewall_rules", name, attribute),
                    f"{instance.address.text}.{attribute}",
                    _reason(value),
                    candidates=IP_PROBES,
                )
        draft.firewall_rules.append(FirewallRule(name=name, **addresses))
        draft.declare(f"{draft.id}/firewallRules/{name}", instance.address.text, None, None)

    def administrator(self, instance: Instance) -> None:
        after = instance.after
        draft: ServerDraft | None = None
        name, group = after.get("server_name"), after.get("resource_group_name")
        if _known(name) and _known(group):
            draft = next(
                (
                    d
                    for d in self.drafts.values()
                    if d.name.casefold() == str(name).casefold()
                    and d.resource_group.casefold() == str(group).casefold()
                ),
                None,
            )
            if draft is None:
                return  # a server outside this plan
        else:
            draft = self._child_server(instance, "server_name", "administrators")
            if draft is None:
                return

        def known(attribute: str) -> str | None:
            value = after.get(attribute)
            return str(value) if _known(value) else None

        admin = EntraAdministrator(
            object_id=known("object_id"),
            principal_name=known("principal_name"),
            principal_type=known("principal_type"),
            tenant_id=known("tenant_id"),
        )
        draft.administrators.append(admin)
        key = admin.object_id or instance.address.text
        draft.declare(f"{draft.id}/administrators/{key}", instance.address.text, None, None)

    def _child_server(self, instance: Instance, attribute: str, part: str) -> ServerDraft | None:
        found = self.server_for(instance, attribute)
        if isinstance(found, str):
            self.issues.append(
                CollectionIssue(
                    source=Source.AZURE, resource=instance.address.text, part=part, reason=found
                )
            )
            return None
        return found

    def metric_alert(self, instance: Instance) -> None:
        after, address = instance.after, instance.address
        name = str(after["name"]) if _known(after.get("name")) else address.text
        group = (
            str(after["resource_group_name"])
            if _known(after.get("resource_group_name"))
            else UNKNOWN_TEXT
        )
        alert_id = (
            str(after["id"])
            if _known(after.get("id"))
            else f"/subscriptions/{self.subscription or _UNKNOWN_SUBSCRIPTION}/resourceGroups/"
            f"{group}/providers/Microsoft.Insights/metricAlerts/{name}"
        )
        scopes = after.get("scopes")
        known_scopes = [str(s) for s in _list(scopes) if _known(s)]
        open_scopes = isinstance(scopes, _Marker) or any(not _known(s) for s in _list(scopes))
        covered = [
            draft
            for draft in self.drafts.values()
            if any(resource_id_covers(scope, draft.id) for scope in known_scopes)
        ]
        unresolved = False
        if open_scopes:
            found = self._resolve(
                address.modules, address.index, self.config.references(address, "scopes")
            )
            covered += [d for d in found if d not in covered]
            unresolved = not found
        enabled = as_bool(after.get("enabled")) if _known(after.get("enabled")) else None
        criteria: list[AlertCriterion] = []
        open_thresholds: list[int] = []
        for kind in ("criteria", "dynamic_criteria"):
            for block in _list(after.get(kind)):
                block = _dict(block)
                metric = block.get("metric_name")
                if not _known(metric):
                    continue
                threshold = block.get("threshold") if kind == "criteria" else None
                if kind == "criteria" and not _known(threshold):
                    open_thresholds.append(len(criteria))
                criteria.append(
                    AlertCriterion(
                        metric_name=str(metric),
                        operator=str(block["operator"]) if _known(block.get("operator")) else None,
                        threshold=as_float(threshold) if _known(threshold) else None,
                        time_aggregation=str(block["aggregation"])
                        if _known(block.get("aggregation"))
                        else None,
                        metric_namespace=str(block["metric_namespace"])
                        if _known(block.get("metric_namespace"))
                        else None,
                    )
                )
        actions = tuple(
            str(group_id) if _known(group_id) else UNKNOWN_TEXT
            for block in _list(after.get("action"))
            for group_id in [_dict(block).get("action_group_id")]
        )
        targets = list(self.drafts.values()) if unresolved else covered
        for draft in targets:
            alert = MetricAlert(
                id=alert_id,
                name=name,
                enabled=True if enabled is None else enabled,
                severity=as_int(after.get("severity")) if _known(after.get("severity")) else None,
                scopes=tuple(known_scopes)
                + (() if unresolved else (draft.id,) if open_scopes else ()),
                criteria=tuple(criteria),
                action_groups=actions,
            )
            draft.alerts.append(alert)
            if unresolved:
                draft.open_value(
                    ("metric_alerts", alert_id, "scopes"),
                    f"{address.text}.scopes",
                    UNKNOWN_REASON,
                    candidates=((draft.id,), ()),
                    probes=True,
                )
            for index in open_thresholds:
                draft.open_value(
                    ("metric_alerts", alert_id, "criteria", str(index), "threshold"),
                    f"{address.text}.criteria.threshold",
                    UNKNOWN_REASON,
                    candidates=THRESHOLD_PROBES,
                )
        if targets:
            self.alert_resources.append(
                PlannedResource(id=alert_id, address=address.text, file=None, line=None)
            )


def read_plan(path: Path, display: str) -> PlanReading:
    """The planned state of a ``terraform show -json`` plan."""
    document = load_plan(path, display)
    configuration = _dict(document.get("configuration"))
    reader = _Reader(
        document=document,
        config=_Config(
            root=_dict(configuration.get("root_module")),
            variables=_dict(document.get("variables")),
        ),
        subscription=_subscription(document),
    )
    found = instances(document)
    for instance in found:
        if instance.address.type != SERVER:
            continue
        if "delete" in instance.actions:
            before = instance.before
            resource = str(before["id"]) if _known(before.get("id")) else instance.address.text
            reader.changes.append(
                PlannedChange(
                    address=instance.address.text,
                    resource=resource,
                    actions=instance.actions,
                    replace_paths=instance.replace_paths,
                )
            )
        if instance.deleted:
            continue
        reader.drafts[instance.address.text] = reader.server(instance)
    readers = {
        CONFIGURATION: reader.configuration,
        FIREWALL_RULE: reader.firewall_rule,
        ADMINISTRATOR: reader.administrator,
        METRIC_ALERT: reader.metric_alert,
    }
    for instance in found:
        if instance.address.type in readers and not instance.deleted:
            readers[instance.address.type](instance)
    servers = []
    planned = []
    resources = []
    issues = list(reader.issues)
    for draft in reader.drafts.values():
        servers.append(finish(draft, "plan"))
        planned += draft.planned
        resources += draft.resources
        issues += draft.issues
    terraform_version = document.get("terraform_version")
    origin = SnapshotOrigin(
        kind="plan",
        files=(input_file("plan", path, display),),
        format_version=str(document["format_version"]),
        tool=f"terraform_version {terraform_version}" if terraform_version else None,
        resources=tuple(resources + reader.alert_resources),
        planned=tuple(planned),
        changes=tuple(reader.changes),
    )
    section = AzureSection(servers=tuple(sorted(servers, key=lambda s: s.id.casefold())))
    return PlanReading(section=section, origin=origin, issues=tuple(issues))
