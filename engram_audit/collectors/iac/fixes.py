"""Fixes for findings on planned state: the attribute and value to set in the source.

A finding on a Terraform plan or an ARM template is about a resource that is not deployed yet,
so its fix is never an ``az`` command: it names the resource (address, file and line), the
attribute as the source spells it, and the value, e.g.
``In main.tf:12 (azurerm_postgresql_flexible_server.zep): set backup_retention_days = 35``.

What to set comes from the finding's facts (``checks.facts``): ``setting`` (the server
resource's property as ARM names it, and the value the rule implies), ``parameter`` and
``value`` (a server parameter), ``firewall_rule`` (a rule to remove), and the values a person
supplied in the policy (``remediation_params``). The source's name for a property is the
mapping the readers use:

- Terraform: ``terraform.SERVER_ATTRIBUTES`` (azurerm attribute names, provider docs
  website/docs/r/postgresql_flexible_server.html.markdown @ 69697b7); a server parameter is an
  ``azurerm_postgresql_flexible_server_configuration`` (``name``, ``value``, ``server_id``), a
  firewall rule an ``azurerm_postgresql_flexible_server_firewall_rule``, an Entra administrator
  an ``azurerm_postgresql_flexible_server_active_directory_administrator`` (``server_name``,
  ``resource_group_name``, ``tenant_id``, ``object_id``, ``principal_name``,
  ``principal_type``), an alert an ``azurerm_monitor_metric_alert`` (``scopes``, ``criteria {
  metric_namespace, metric_name, aggregation, operator, threshold }``, ``action {
  action_group_id }``), each as its page in website/docs/r/ @ 69697b7 spells it. A static
  parameter set by the configuration resource restarts the server on apply unless the provider's
  ``features { postgresql_flexible_server { restart_server_on_configuration_value_change =
  false } }`` (website/docs/r/postgresql_flexible_server_configuration.html.markdown).
- ARM and Bicep: the template's property path is the snapshot's (``arm`` takes the body as it
  is): ``properties.backup.backupRetentionDays``; a server parameter is a
  ``Microsoft.DBforPostgreSQL/flexibleServers/configurations`` child (``properties.value``,
  ``properties.source``), a firewall rule a ``.../firewallRules`` child, an Entra administrator
  an ``.../administrators`` child named by the object id (``properties.principalName``,
  ``principalType``, ``tenantId``), an alert a ``Microsoft.Insights/metricAlerts`` resource
  (``properties.scopes``, ``properties.criteria.allOf[]`` with ``metricNamespace``,
  ``metricName``, ``timeAggregation``, ``operator``, ``threshold``; ``properties.actions[]
  .actionGroupId``), as the ARM template reference spells them
  (learn.microsoft.com/azure/templates/microsoft.dbforpostgresql/flexibleservers and its child
  pages; .../microsoft.insights/2018-03-01/metricalerts).

A value a fix needs but no fact gives is said in words from the finding's expectation, never
guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engram_audit.checks.facts import FACTS, FactValue
from engram_audit.collectors.iac.build import FLEXIBLE_SERVERS, USER_OVERRIDE
from engram_audit.collectors.iac.terraform import (
    ADMINISTRATOR,
    CONFIGURATION,
    CUSTOMER_MANAGED_KEY,
    FIREWALL_RULE,
    GEO_BACKUP,
    METRIC_ALERT,
    SERVER,
    SERVER_ATTRIBUTES,
    SKU_TIERS,
    STORAGE_MB_VALUES,
    Attribute,
    parse_address,
)
from engram_audit.model import Finding, Status
from engram_audit.model.snapshot import AzureServer, Snapshot
from engram_audit.model.values import dig

ARM_TYPE = FLEXIBLE_SERVERS
ALERT_NAMESPACE = FLEXIBLE_SERVERS  # the flexible server's metric namespace
# Azure sets these only when a server is created (checks azure.backup.geo_redundant and
# azure.encryption.at_rest; locate.REPLACED_TITLE): a template cannot change a deployed one.
_CREATE_ONLY_ARM = {
    GEO_BACKUP.path: "geo-redundant backup",
    CUSTOMER_MANAGED_KEY.path: "customer-managed keys",
}
# Integers in ARM's body (backupRetentionDays, storageSizeGB); other values are strings.
_ARM_NUMBERS = {a.path for a in SERVER_ATTRIBUTES if a.kind in ("number", "megabytes")}


@dataclass(frozen=True)
class Where:
    """A resource of the plan or template: its address, and its file and line when known."""

    address: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line} ({self.address})"
        if self.file:
            return f"{self.file} ({self.address})"
        return self.address


Locate = Callable[[str], Where | None]  # a resource id -> where the plan or template declares it


def _text(value: FactValue | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else ", ".join(value)


def _entries(value: FactValue | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _split(entry: str) -> tuple[tuple[str, ...], str | None]:
    path, sep, value = entry.partition("=")
    return tuple(path.split(".")), (value if sep else None)


class _Writer:
    """Values and names in the source's own syntax."""

    def __init__(self, kind: str, file: str | None) -> None:
        self.terraform = kind == "plan"
        self.bicep = bool(file) and str(file).endswith(".bicep")

    def string(self, value: str) -> str:
        if self.terraform:
            # An HCL quoted string: JSON's escapes, and template sequences escaped.
            return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
        if self.bicep:  # Bicep's escapes for a backslash, a quote and ${ (Bicep data types)
            escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
            return "'" + escaped + "'"
        return json.dumps(value)


def _person(facts: Mapping[str, FactValue], name: str, writer: _Writer) -> str:
    """A value only a person can supply: the policy's (``remediation_params``), else what it is
    and where the policy can give it."""
    given = _text(facts.get(name))
    if given:
        return writer.string(given)
    return f"({FACTS[name].description}; the rule's remediation_params.{name} names it here)"


@dataclass
class PlannedFixes:
    """The fix of each failure on one planned snapshot."""

    snapshot: Snapshot
    locate: Locate

    @property
    def kind(self) -> str:
        return self.snapshot.origin.kind if self.snapshot.origin is not None else "plan"

    def fix(self, finding: Finding) -> str:
        """The fix naming the source's attribute and value; "" for anything but a failure."""
        if finding.status is not Status.FAIL:
            return ""
        facts = finding.facts
        server_id = _text(facts.get("server_id"))
        server = self._server(server_id)
        where = self.locate(server_id) or self.locate(finding.resource) or Where(finding.resource)
        writer = _Writer(self.kind, where.file)
        lines: list[str] = []
        for entry in _entries(facts.get("setting")):
            path, value = _split(entry)
            lines.append(self._setting(path, value, finding, server, where, writer))
        if "firewall_rule" in facts and not lines:
            for name in _entries(facts.get("firewall_rule")):
                lines.append(self._firewall_rule(server_id, name, where))
        if "parameter" in facts and not lines:
            lines.append(self._parameter(finding, server_id, where))
        if not lines:
            lines.append(f"In {where}: change the declaration so that: {finding.expected}")
        return "\n".join(lines)

    def _server(self, server_id: str) -> AzureServer | None:
        servers = self.snapshot.azure.servers if self.snapshot.azure is not None else ()
        folded = server_id.casefold()
        return next((s for s in servers if s.id.casefold() == folded), None)

    # -- properties of the server resource -------------------------------------------------

    def _setting(
        self,
        path: tuple[str, ...],
        value: str | None,
        finding: Finding,
        server: AzureServer | None,
        where: Where,
        writer: _Writer,
    ) -> str:
        if path[0] == "administrators":
            return self._administrator(finding.facts, where, writer)
        if path[0] == "metric_alerts" and len(path) == 3:
            return self._alert(path[1], path[2], value, finding.facts, where, writer)
        if writer.terraform:
            return self._terraform_setting(path, value, finding, server, where, writer)
        return self._arm_setting(path, value, finding, where, writer)

    def _terraform_setting(
        self,
        path: tuple[str, ...],
        value: str | None,
        finding: Finding,
        server: AzureServer | None,
        where: Where,
        writer: _Writer,
    ) -> str:
        attribute = next((a for a in SERVER_ATTRIBUTES if a.path == path), None)
        if attribute is None:
            shown = ".".join(path)
            return f"In {where}: set what azurerm maps to {shown} so that: {finding.expected}"
        assignment = _terraform_assignment(attribute, value, finding, server, writer)
        text = f"In {where}: {assignment}"
        if attribute.forces_new and attribute.kind in ("switch", "key"):
            text += (
                f" ({attribute.forces_new}: on a server already deployed Terraform replaces it, "
                "and its data with it; create the new server beside the old one and migrate)"
            )
        elif attribute.forces_new:
            text += f" (never lower: {attribute.forces_new})"
        return text

    def _arm_setting(
        self,
        path: tuple[str, ...],
        value: str | None,
        finding: Finding,
        where: Where,
        writer: _Writer,
    ) -> str:
        shown = ".".join(path)
        if path == ("sku", "tier") and value is not None:
            text = (
                f"In {where}: set sku.tier = {writer.string(value)} and sku.name to a SKU of "
                f"that tier (expected: {finding.expected})"
            )
        elif value is None:
            text = f"In {where}: set {shown} so that: {finding.expected}"
        elif path in _ARM_NUMBERS and value.isdigit():
            text = f"In {where}: set {shown} = {value}"
        else:
            text = f"In {where}: set {shown} = {writer.string(value)}"
        if path[:2] == ("properties", "authConfig"):
            # Both shapes ARM has shipped (checks.azure.security.entra_auth).
            text += f" (API version 2022-03-08-preview spells it {path[-1]}Enabled: true/false)"
        if path == ("properties", "dataEncryption", "type"):
            text += (
                " with properties.dataEncryption.primaryKeyURI (the Key Vault key) and "
                "primaryUserAssignedIdentityId, and the identity in the server's identity"
            )
        if path in _CREATE_ONLY_ARM:
            text += (
                f" ({_CREATE_ONLY_ARM[path]} can be chosen only when a server is created: for "
                "a server already deployed, deploy a new server and migrate)"
            )
        return text

    # -- child resources --------------------------------------------------------------------

    def _parameter(self, finding: Finding, server_id: str, where: Where) -> str:
        facts = finding.facts
        name = _text(facts.get("parameter"))
        value = _text(facts.get("value"))
        declared = self.locate(f"{server_id}/configurations/{name}")
        writer = _Writer(self.kind, (declared or where).file)
        wanted = (
            writer.string(value) if value else f"the value the rule expects ({finding.expected})"
        )
        static = _text(facts.get("restart")) == "required"
        if writer.terraform:
            if declared is not None:
                text = f"In {declared}: set value = {wanted}"
            else:
                text = (
                    f'Add a resource "{CONFIGURATION}" with name = {writer.string(name)}, '
                    f"value = {wanted}, server_id = {_terraform_reference(where.address, 'id')} "
                    f"(the server: {where})"
                )
            if static:
                text += (
                    f" ({name} is static: the azurerm provider restarts the server on apply "
                    "unless features.postgresql_flexible_server."
                    "restart_server_on_configuration_value_change is false)"
                )
            return text
        if declared is not None:
            text = f"In {declared}: set properties.value = {wanted}"
        else:
            text = (
                f"Add a {ARM_TYPE}/configurations child resource of {where} named "
                f"{writer.string(name)} with properties.value = {wanted} and "
                f"properties.source = {writer.string(USER_OVERRIDE)}"
            )
        if static:
            text += f" ({name} is static: Azure applies it when the server restarts)"
        return text

    def _firewall_rule(self, server_id: str, name: str, where: Where) -> str:
        declared = self.locate(f"{server_id}/firewallRules/{name}")
        if declared is None:
            return f"In {where}: remove the firewall rule {name}"
        what = FIREWALL_RULE if self.kind == "plan" else f"{ARM_TYPE}/firewallRules"
        return f"Remove the {what} {declared} (firewall rule {name})"

    def _administrator(self, facts: Mapping[str, FactValue], where: Where, w: _Writer) -> str:
        object_id = _person(facts, "entra_admin_object_id", w)
        name = _person(facts, "entra_admin_name", w)
        if w.terraform:
            return (
                f'Add a resource "{ADMINISTRATOR}" with server_name = '
                f"{_terraform_reference(where.address, 'name')}, resource_group_name = "
                f"{_terraform_reference(where.address, 'resource_group_name')}, tenant_id = the "
                f"Entra tenant, object_id = {object_id}, principal_name = {name}, principal_type "
                f'= "Group" (the server: {where})'
            )
        return (
            f"Add a {ARM_TYPE}/administrators child resource of {where} named {object_id} "
            f"with properties.principalName = {name}, properties.principalType = "
            f"{w.string('Group')}, properties.tenantId = the Entra tenant"
        )

    def _alert(
        self,
        metric: str,
        aggregation: str,
        threshold: str | None,
        facts: Mapping[str, FactValue],
        where: Where,
        w: _Writer,
    ) -> str:
        action = _person(facts, "action_group_id", w)
        limit = threshold if threshold is not None else "the threshold the rule asks for"
        if w.terraform:
            return (
                f'Add (or correct) a resource "{METRIC_ALERT}" with scopes = '
                f"[{_terraform_reference(where.address, 'id')}], enabled = true, criteria {{ "
                f"metric_namespace = {w.string(ALERT_NAMESPACE)}, metric_name = "
                f"{w.string(metric)}, aggregation = {w.string(aggregation)}, operator = "
                f"{w.string('GreaterThan')}, threshold = {limit} }}, action {{ action_group_id "
                f"= {action} }} (the server: {where})"
            )
        return (
            f"Add (or correct) a Microsoft.Insights/metricAlerts resource with "
            f"properties.scopes = [the id of {where}], properties.enabled = true, "
            f"properties.criteria.allOf = [{{ metricNamespace: {w.string(ALERT_NAMESPACE)}, "
            f"metricName: {w.string(metric)}, timeAggregation: {w.string(aggregation)}, "
            f"operator: {w.string('GreaterThan')}, threshold: {limit}, criterionType: "
            f"{w.string('StaticThresholdCriterion')} }}] and properties.actions = "
            f"[{{ actionGroupId: {action} }}]"
        )


def _terraform_reference(address: str, attribute: str) -> str:
    """How a resource refers to the server: ``azurerm_postgresql_flexible_server.zep.id``,
    written inside the server's module when it is in one."""
    parsed = parse_address(address)
    if parsed is None or parsed.type != SERVER:
        return f"{address}.{attribute}"
    reference = f"{parsed.block}.{attribute}"
    if parsed.modules:
        reference += f" (inside {parsed.module_prefix.rstrip('.')})"
    return reference


def _terraform_assignment(
    attribute: Attribute,
    value: str | None,
    finding: Finding,
    server: AzureServer | None,
    writer: _Writer,
) -> str:
    """``set NAME = VALUE`` in azurerm's terms for a value in ARM's."""
    block, _, inner = attribute.name.rpartition(".")
    if attribute.kind == "sku":
        return _sku_assignment(attribute, value, finding, server, writer)
    if attribute.kind == "key":
        return (
            f"add a {block} block with {inner} = the Key Vault key's id, and an identity "
            "block with the user-assigned identity that may use it (identity_ids, "
            "primary_user_assigned_identity_id)"
        )
    if value is None:
        return f"set {attribute.name} so that: {finding.expected}"
    if attribute.kind == "switch":
        written = "true" if value.casefold() == "enabled" else "false"
    elif attribute.kind == "number" and value.isdigit():
        written = value
    elif attribute.kind == "megabytes" and value.isdigit():
        wanted = int(value) * 1024
        written = str(next((mb for mb in STORAGE_MB_VALUES if mb >= wanted), wanted))
    else:
        written = writer.string(value)
    if block:
        return f"set {block} {{ {inner} = {written} }}"
    return f"set {attribute.name} = {written}"


def _sku_assignment(
    attribute: Attribute,
    value: str | None,
    finding: Finding,
    server: AzureServer | None,
    writer: _Writer,
) -> str:
    """``sku_name`` is azurerm's tier prefix and SKU name in one (``GP_Standard_D2s_v3``)."""
    prefixes = {tier.casefold(): prefix for prefix, tier in SKU_TIERS.items()}
    if attribute.path == ("sku", "tier"):
        if value is None or value.casefold() not in prefixes:
            return f"set sku_name so that its tier is: {finding.expected}"
        wanted = prefixes[value.casefold()]
        return f"set sku_name to a {wanted}_ SKU name (tier {value}; expected: {finding.expected})"
    tier = dig(server.resource, "sku", "tier") if server is not None else None
    current = prefixes.get(str(tier).casefold()) if tier is not None else None
    if value is None:
        return f"set sku_name to a SKU that meets: {finding.expected}"
    if current is None:
        return f"set sku_name to {value} with its tier prefix (B_, GP_ or MO_)"
    return f"set sku_name = {writer.string(f'{current}_{value}')}"
