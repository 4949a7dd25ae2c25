"""ARM templates (JSON, and Bicep compiled with ``bicep build``) as planned state.

Read as Azure Resource Manager deploys them (learn.microsoft.com/azure/azure-resource-manager/
templates: syntax, parameters, copy, child resources, linked and nested templates):

- ``resources`` as the classic array or, with ``languageVersion`` 2.0, as an object of symbolic
  names; ``existing`` resources are references, not deployments; ``condition`` false skips one;
- ``copy`` loops on resources, properties and variables;
- child resources nested in their parent (``"type": "configurations"``) or top level
  (``Microsoft.DBforPostgreSQL/flexibleServers/configurations``, ``"name": "server/param"``);
- nested deployments (``Microsoft.Resources/deployments`` with an inline ``template``), in the
  inner scope (their own parameters) or the outer one; a linked template (``templateLink``) is
  not fetched and is reported;
- parameters: a parameters file (``{"parameters": {"name": {"value": ...}}}``), else the
  template's ``defaultValue``; one with neither is open, over its ``allowedValues``. Secure
  parameters (``securestring``, ``secureObject``) and Key Vault references are never read.

The server's ``sku`` and ``properties`` are ARM's own body, so they are taken as they are,
without ``administratorLoginPassword``. Where the template leaves out a value Azure documents a
default for (backup retention 7 days, geo-redundant backup and HA off, Entra off), the default
is used and the finding says so; where Azure documents none (``storage.autoGrow``,
``network.publicNetworkAccess``), the value is open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram_audit.collectors.iac.build import (
    UNKNOWN_TEXT,
    DeclaredParameter,
    ServerDraft,
    finish,
    input_file,
    server_id,
)
from engram_audit.collectors.iac.domains import IP_PROBES, THRESHOLD_PROBES, body_candidates
from engram_audit.collectors.iac.expressions import (
    PLACEHOLDER_GROUP,
    PLACEHOLDER_SUBSCRIPTION,
    Scope,
    Unknown,
    first_unknown,
)
from engram_audit.errors import InputError, Problem
from engram_audit.inputs.yaml_source import SourceDocument, load_document
from engram_audit.model.base import Source
from engram_audit.model.snapshot import (
    AlertCriterion,
    AzureSection,
    CollectionIssue,
    EntraAdministrator,
    FirewallRule,
    MetricAlert,
    PlannedResource,
    SnapshotOrigin,
)
from engram_audit.model.values import as_bool, as_float, as_int, dig, resource_id_covers

SERVER = "microsoft.dbforpostgresql/flexibleservers"
SINGLE_SERVER = "microsoft.dbforpostgresql/servers"
CONFIGURATION = SERVER + "/configurations"
FIREWALL_RULE = SERVER + "/firewallrules"
ADMINISTRATOR = SERVER + "/administrators"
METRIC_ALERT = "microsoft.insights/metricalerts"
DEPLOYMENT = "microsoft.resources/deployments"
_SECRETS = ("administratorLoginPassword",)
_BODY_KEYS = ("sku", "properties", "location", "identity")
_MAX_NESTING = 10
# Body values a check reads that Azure documents no default for: left out, they stay open.
_NO_DEFAULT = (
    ("sku", "name"),
    ("sku", "tier"),
    ("properties", "version"),
    ("properties", "storage", "storageSizeGB"),
    ("properties", "storage", "autoGrow"),
    ("properties", "network", "publicNetworkAccess"),
)
_NO_DEFAULT_REASON = "not declared in the template, and Microsoft documents no default for it"
_UNNAMED = "(name known only at deployment)"


@dataclass
class Deployed:
    """One resource the template deploys (after copy loops and nested deployments)."""

    type: str
    name: Any
    body: dict[str, Any]
    address: str
    file: str | None
    line: int | None
    uncertain: str | None = None  # its condition is open: why


@dataclass
class TemplateReading:
    section: AzureSection
    origin: SnapshotOrigin
    issues: tuple[CollectionIssue, ...]
    empty_reason: str = "the template declares no Microsoft.DBforPostgreSQL/flexibleServers"


@dataclass
class _Expansion:
    document: SourceDocument
    display: str
    deployed: list[Deployed] = field(default_factory=list)
    issues: list[CollectionIssue] = field(default_factory=list)

    def issue(self, resource: str, part: str | None, reason: str) -> None:
        self.issues.append(
            CollectionIssue(source=Source.AZURE, resource=resource, part=part, reason=reason)
        )

    def line(self, key_path: tuple[str | int, ...] | None) -> int | None:
        if key_path is None:
            return None
        return self.document.position(key_path)[0]


def _problem(display: str, message: str, key: str = "") -> InputError:
    return InputError([Problem(display, 1, 1, key, message)])


def load_template(path: Path, display: str) -> SourceDocument:
    document = load_document(path, display)
    data = document.data
    if not isinstance(data, dict) or "resources" not in data:
        raise _problem(display, "not an ARM template: no resources")
    schema = str(data.get("$schema", ""))
    if "deploymentParameters" in schema:
        raise _problem(display, "a parameters file, not a template: give it to --arm-parameters")
    language = data.get("languageVersion")
    if language is not None and str(language).split(".")[0] not in ("1", "2"):
        raise _problem(
            display,
            f"template languageVersion {language!r} cannot be read: this engram-audit reads "
            "classic templates and languageVersion 1.x and 2.0",
            "languageVersion",
        )
    return document


def load_parameters(path: Path) -> dict[str, Any]:
    """A parameters file's values; Key Vault references stay open, never read."""
    document = load_document(path, str(path))
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
        raise _problem(str(path), "not an ARM parameters file: no parameters object")
    given: dict[str, Any] = {}
    for name, entry in data["parameters"].items():
        if isinstance(entry, dict) and "value" in entry:
            given[name] = entry["value"]
        elif isinstance(entry, dict) and "reference" in entry:
            given[name] = Unknown(f"parameter '{name}' is a Key Vault reference: never read")
    return given


def _candidates(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    allowed = spec.get("allowedValues")
    if isinstance(allowed, list) and allowed:
        return tuple(allowed)
    kind = str(spec.get("type", "")).casefold()
    if kind == "bool":
        return (True, False)
    low, high = as_int(spec.get("minValue")), as_int(spec.get("maxValue"))
    if kind == "int" and low is not None and high is not None and 0 <= high - low <= 64:
        return tuple(range(low, high + 1))
    return ()


def resolve_parameters(declared: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Each declared parameter's value: given, else its default, else null when nullable, else
    open. Secure ones are never read."""
    resolved: dict[str, Any] = {}
    folded = {str(k).casefold(): v for k, v in given.items()}
    for name, raw_spec in declared.items():
        spec = raw_spec if isinstance(raw_spec, dict) else {}
        kind = str(spec.get("type", "")).casefold()
        if kind in ("securestring", "secureobject"):
            resolved[name] = Unknown(f"secure parameter '{name}': never read")
        elif name.casefold() in folded:
            resolved[name] = folded[name.casefold()]
        elif "defaultValue" in spec:
            resolved[name] = Scope(parameters=resolved, variables={}).value(spec["defaultValue"])
        elif spec.get("nullable") is True:
            resolved[name] = None
        else:
            resolved[name] = Unknown(
                f"template parameter '{name}' has no value and no default (give it in "
                "--arm-parameters)",
                _candidates(spec),
            )
    return resolved


def _items(resources: Any) -> Iterator[tuple[str, str | int, dict[str, Any]]]:
    if isinstance(resources, dict):
        for symbol, raw in resources.items():
            if isinstance(raw, dict):
                yield str(symbol), str(symbol), raw
    elif isinstance(resources, list):
        for index, raw in enumerate(resources):
            if isinstance(raw, dict):
                yield f"resources[{index}]", index, raw


def _expand(
    reading: _Expansion,
    template: Mapping[str, Any],
    scope: Scope,
    prefix: str,
    key_prefix: tuple[str | int, ...] | None,
    depth: int,
    uncertain: str | None = None,
) -> None:
    for label, key, raw in _items(template.get("resources")):
        if raw.get("existing") is True:
            continue
        key_path = (*key_prefix, "resources", key) if key_prefix is not None else None
        copy = raw.get("copy")
        iterations: list[tuple[int | None, Scope]] = [(None, scope)]
        if isinstance(copy, dict):
            count = scope.value(copy.get("count"))
            if not isinstance(count, int) or isinstance(count, bool):
                reason = count.reason if isinstance(count, Unknown) else "not a number"
                reading.issue(
                    f"{reading.display}: {prefix}{label}",
                    _part_of(scope.value(raw.get("type"))),
                    f"cannot tell how many copies of {prefix}{label} the template deploys: {reason}",
                )
                continue
            name = str(copy.get("name", ""))
            iterations = [
                (i, scope.child(copy_index={**scope.copy_index, name: i, None: i}))
                for i in range(count)
            ]
        for index, local in iterations:
            address = f"{prefix}{label}" + (f"[{index}]" if index is not None else "")
            _deploy(reading, raw, local, address, key_path, depth, uncertain)


def _part_of(kind: Any) -> str | None:
    folded = str(kind).casefold()
    return {
        CONFIGURATION: "parameters",
        FIREWALL_RULE: "firewall_rules",
        ADMINISTRATOR: "administrators",
        METRIC_ALERT: "metric_alerts",
    }.get(folded)


def _deploy(
    reading: _Expansion,
    raw: Mapping[str, Any],
    scope: Scope,
    address: str,
    key_path: tuple[str | int, ...] | None,
    depth: int,
    uncertain: str | None,
) -> None:
    if "condition" in raw:
        condition = scope.value(raw["condition"])
        if isinstance(condition, Unknown):
            uncertain = uncertain or condition.reason
        elif condition is False or (isinstance(condition, str) and condition.casefold() == "false"):
            return
    kind = scope.value(raw.get("type"))
    if not isinstance(kind, str):
        return
    if kind.casefold() == DEPLOYMENT:
        _nested(reading, raw, scope, address, key_path, depth, uncertain)
        return
    name = scope.value(raw.get("name"))
    body = {key: scope.value(raw[key]) for key in _BODY_KEYS if key in raw}
    reading.deployed.append(
        Deployed(kind, name, body, address, reading.display, reading.line(key_path), uncertain)
    )
    for child_label, child_key, child in _items(raw.get("resources")):
        child_type = scope.value(child.get("type"))
        child_name = scope.value(child.get("name"))
        if not isinstance(child_type, str):
            continue
        full_type = child_type if "/" in child_type else f"{kind}/{child_type}"
        full_name: Any = child_name
        if "/" not in child_type:
            full_name = (
                f"{name}/{child_name}"
                if isinstance(name, str) and isinstance(child_name, str)
                else Unknown((first_unknown([name, child_name]) or Unknown("")).reason)
            )
        child_path = (*key_path, "resources", child_key) if key_path is not None else None
        reading.deployed.append(
            Deployed(
                full_type,
                full_name,
                {key: scope.value(child[key]) for key in _BODY_KEYS if key in child},
                f"{address}/{child_label}",
                reading.display,
                reading.line(child_path),
                uncertain,
            )
        )


def _nested(
    reading: _Expansion,
    raw: Mapping[str, Any],
    scope: Scope,
    address: str,
    key_path: tuple[str | int, ...] | None,
    depth: int,
    uncertain: str | None,
) -> None:
    properties = raw.get("properties") if isinstance(raw.get("properties"), dict) else {}
    assert isinstance(properties, dict)
    template = properties.get("template")
    if not isinstance(template, dict):
        if properties.get("templateLink") is not None:
            reading.issue(
                f"{reading.display}: {address}",
                None,
                f"{address} deploys a linked template (templateLink), which engram-audit does "
                "not fetch: judge that template on its own",
            )
        return
    if depth >= _MAX_NESTING:
        reading.issue(f"{reading.display}: {address}", None, "nested deployments too deep")
        return
    options = properties.get("expressionEvaluationOptions")
    inner_scope = str(dig(options, "scope") or "outer").casefold() == "inner"
    if inner_scope:
        given: dict[str, Any] = {}
        passed = properties.get("parameters")
        for name, entry in passed.items() if isinstance(passed, dict) else ():
            if isinstance(entry, dict) and "value" in entry:
                given[name] = scope.value(entry["value"])
            else:
                given[name] = Unknown(f"parameter '{name}' is a Key Vault reference: never read")
        declared = template.get("parameters")
        child = Scope(
            parameters=resolve_parameters(declared if isinstance(declared, dict) else {}, given),
            variables=_variables(template),
        )
    else:
        child = scope
    inner_key = (*key_path, "properties", "template") if key_path is not None else None
    _expand(reading, template, child, f"{address}/", inner_key, depth + 1, uncertain)


# --- mapping to the snapshot --------------------------------------------------------------------


def _strip(draft: ServerDraft, value: Any, path: tuple[str, ...]) -> Any:
    """The body without unknowns (each recorded as open), nulls and secrets."""
    if isinstance(value, Unknown):
        draft.open_value(
            ("resource", *path),
            ".".join(path),
            value.reason,
            candidates=value.candidates or body_candidates(path),
        )
        return None
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if key in _SECRETS:
                continue
            stripped = _strip(draft, item, (*path, key))
            if stripped is not None:
                cleaned[key] = stripped
        return cleaned
    if isinstance(value, list):
        return [item if first_unknown(item) is None else UNKNOWN_TEXT for item in value]
    return value


def _server(deployed: Deployed) -> ServerDraft:
    name = deployed.name if isinstance(deployed.name, str) else _UNNAMED
    identity = server_id(PLACEHOLDER_SUBSCRIPTION, PLACEHOLDER_GROUP, name)
    draft = ServerDraft(
        id=identity,
        name=name,
        resource_group=PLACEHOLDER_GROUP,
        subscription_id=PLACEHOLDER_SUBSCRIPTION,
        address=deployed.address,
        body={},
        file=deployed.file,
        line=deployed.line,
        azure_defaults=True,
    )
    body = _strip(draft, deployed.body, ())
    draft.body = {"type": "Microsoft.DBforPostgreSQL/flexibleServers", "name": name, **(body or {})}
    for path in _NO_DEFAULT:
        full = ("resource", *path)
        if dig(draft.body, *path) is None and not any(v.path == full for v in draft.planned):
            draft.open_value(full, ".".join(path), _NO_DEFAULT_REASON)
    draft.declare(identity, deployed.address, deployed.file, deployed.line)
    if deployed.uncertain:
        draft.issue(
            None,
            f"the template deploys this server only if a condition holds: {deployed.uncertain}",
        )
    return draft


@dataclass
class _Mapper:
    reading: _Expansion
    drafts: list[ServerDraft] = field(default_factory=list)
    alerts: list[PlannedResource] = field(default_factory=list)

    def parent(self, deployed: Deployed, part: str) -> tuple[ServerDraft, str] | None:
        """The server a child belongs to and the child's own name."""
        name = deployed.name
        if isinstance(name, str) and "/" in name:
            server_name, _, child = name.partition("/")
            for draft in self.drafts:
                if draft.name.casefold() == server_name.casefold():
                    return draft, child
            return None  # a server this template does not deploy
        if len(self.drafts) == 1:
            child_name = name.rpartition("/")[2] if isinstance(name, str) else deployed.address
            return self.drafts[0], child_name
        reason = name.reason if isinstance(name, Unknown) else f"its name {name!r} has no server"
        self.reading.issue(
            f"{self.reading.display}: {deployed.address}",
            part,
            f"cannot tell which server {deployed.address} belongs to: {reason}",
        )
        return None

    def child(self, deployed: Deployed, part: str) -> tuple[ServerDraft, str] | None:
        found = self.parent(deployed, part)
        if found is not None and deployed.uncertain:
            found[0].issue(
                part,
                f"the template deploys {deployed.address} only if a condition holds: "
                f"{deployed.uncertain}",
            )
            return None
        return found

    def configuration(self, deployed: Deployed) -> None:
        found = self.child(deployed, "parameters")
        if found is None:
            return
        draft, name = found
        value = dig(deployed.body, "properties", "value")
        if value is None:
            return  # no value: the deployment leaves the parameter as it is
        parameter = DeclaredParameter(
            value=None if isinstance(value, Unknown) else str(value),
            address=deployed.address,
            attribute=f"{deployed.address} properties.value",
        )
        if isinstance(value, Unknown):
            parameter.open_reason = value.reason
        draft.parameters[name] = parameter
        draft.declare(
            f"{draft.id}/configurations/{name}", deployed.address, deployed.file, deployed.line
        )

    def firewall_rule(self, deployed: Deployed) -> None:
        found = self.child(deployed, "firewall_rules")
        if found is None:
            return
        draft, name = found
        addresses = {}
        for key, attribute in (
            ("startIpAddress", "start_ip_address"),
            ("endIpAddress", "end_ip_address"),
        ):
            value = dig(deployed.body, "properties", key)
            if isinstance(value, str):
                addresses[attribute] = value
                continue
            addresses[attribute] = UNKNOWN_TEXT
            draft.open_value(
                ("firewall_rules", name, attribute),
                f"{deployed.address} properties.{key}",
                value.reason if isinstance(value, Unknown) else "not declared",
                candidates=IP_PROBES,
            )
        draft.firewall_rules.append(FirewallRule(name=name, **addresses))
        draft.declare(
            f"{draft.id}/firewallRules/{name}", deployed.address, deployed.file, deployed.line
        )

    def administrator(self, deployed: Deployed) -> None:
        found = self.child(deployed, "administrators")
        if found is None:
            return
        draft, name = found

        def known(key: str) -> str | None:
            value = dig(deployed.body, "properties", key)
            return value if isinstance(value, str) else None

        admin = EntraAdministrator(
            object_id=known("objectId") or (name if name != deployed.address else None),
            principal_name=known("principalName"),
            principal_type=known("principalType"),
            tenant_id=known("tenantId"),
        )
        draft.administrators.append(admin)
        draft.declare(
            f"{draft.id}/administrators/{admin.object_id or deployed.address}",
            deployed.address,
            deployed.file,
            deployed.line,
        )

    def metric_alert(self, deployed: Deployed) -> None:
        properties = dig(deployed.body, "properties") or {}
        name = deployed.name if isinstance(deployed.name, str) else deployed.address
        alert_id = (
            f"/subscriptions/{PLACEHOLDER_SUBSCRIPTION}/resourceGroups/{PLACEHOLDER_GROUP}"
            f"/providers/Microsoft.Insights/metricAlerts/{name}"
        )
        scopes = properties.get("scopes") if isinstance(properties, dict) else None
        known_scopes = [s for s in scopes if isinstance(s, str)] if isinstance(scopes, list) else []
        open_scopes = not isinstance(scopes, list) or any(not isinstance(s, str) for s in scopes)
        covered = [
            draft
            for draft in self.drafts
            if any(resource_id_covers(scope, draft.id) for scope in known_scopes)
        ]
        targets = covered if covered or not open_scopes else list(self.drafts)
        enabled = as_bool(properties.get("enabled")) if isinstance(properties, dict) else None
        criteria: list[AlertCriterion] = []
        open_thresholds: list[int] = []
        for condition in dig(properties, "criteria", "allOf") or ():
            if not isinstance(condition, dict) or not isinstance(condition.get("metricName"), str):
                continue
            threshold = condition.get("threshold")
            if isinstance(threshold, Unknown):
                open_thresholds.append(len(criteria))
            criteria.append(
                AlertCriterion(
                    metric_name=condition["metricName"],
                    operator=_text(condition.get("operator")),
                    threshold=as_float(threshold) if not isinstance(threshold, Unknown) else None,
                    time_aggregation=_text(condition.get("timeAggregation")),
                    metric_namespace=_text(condition.get("metricNamespace")),
                )
            )
        actions = tuple(
            str(group) if isinstance(group, str) else UNKNOWN_TEXT
            for action in (dig(properties, "actions") or ())
            if isinstance(action, dict) and (group := action.get("actionGroupId")) is not None
        )
        for draft in targets:
            draft.alerts.append(
                MetricAlert(
                    id=alert_id,
                    name=name,
                    enabled=True if enabled is None else enabled,
                    severity=as_int(properties.get("severity"))
                    if isinstance(properties, dict)
                    else None,
                    scopes=tuple(known_scopes),
                    criteria=tuple(criteria),
                    action_groups=actions,
                )
            )
            if open_scopes and draft not in covered:
                draft.open_value(
                    ("metric_alerts", alert_id, "scopes"),
                    f"{deployed.address} properties.scopes",
                    (first_unknown(scopes) or Unknown("not declared")).reason,
                    candidates=((draft.id,), ()),
                    probes=True,
                )
            for index in open_thresholds:
                draft.open_value(
                    ("metric_alerts", alert_id, "criteria", str(index), "threshold"),
                    f"{deployed.address} criteria threshold",
                    "the threshold is known only at deployment",
                    candidates=THRESHOLD_PROBES,
                )
            if deployed.uncertain:
                draft.issue(
                    "metric_alerts",
                    f"the template deploys {deployed.address} only if a condition holds: "
                    f"{deployed.uncertain}",
                )
        if targets:
            self.alerts.append(
                PlannedResource(
                    id=alert_id, address=deployed.address, file=deployed.file, line=deployed.line
                )
            )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _variables(template: Mapping[str, Any]) -> dict[str, Any]:
    variables = template.get("variables")
    return variables if isinstance(variables, dict) else {}


def read_template(path: Path, display: str, parameters: Path | None) -> TemplateReading:
    """The planned state of an ARM template (and its parameters file)."""
    document = load_template(path, display)
    template: dict[str, Any] = document.data
    given = load_parameters(parameters) if parameters is not None else {}
    declared = template.get("parameters")
    scope = Scope(
        parameters=resolve_parameters(declared if isinstance(declared, dict) else {}, given),
        variables=_variables(template),
    )
    reading = _Expansion(document=document, display=display)
    _expand(reading, template, scope, "", (), 0)
    mapper = _Mapper(reading)
    by_type = sorted(reading.deployed, key=lambda d: d.address)
    for deployed in by_type:
        if deployed.type.casefold() == SERVER:
            mapper.drafts.append(_server(deployed))
    handlers = {
        CONFIGURATION: mapper.configuration,
        FIREWALL_RULE: mapper.firewall_rule,
        ADMINISTRATOR: mapper.administrator,
        METRIC_ALERT: mapper.metric_alert,
    }
    for deployed in by_type:
        handler = handlers.get(deployed.type.casefold())
        if handler is not None:
            handler(deployed)
    servers, planned, resources, issues = [], [], [], list(reading.issues)
    for draft in mapper.drafts:
        servers.append(finish(draft, "template"))
        planned += draft.planned
        resources += draft.resources
        issues += draft.issues
    generator = dig(template, "metadata", "_generator")
    tool = (
        f"{generator.get('name')} {generator.get('version')}"
        if isinstance(generator, dict) and generator.get("name")
        else f"contentVersion {template.get('contentVersion')}"
        if template.get("contentVersion")
        else None
    )
    files = [input_file("template", path, display)]
    if parameters is not None:
        files.append(input_file("parameters", parameters, str(parameters)))
    origin = SnapshotOrigin(
        kind="template",
        files=tuple(files),
        format_version=str(template["languageVersion"]) if "languageVersion" in template else None,
        tool=tool,
        resources=tuple(resources + mapper.alerts),
        planned=tuple(planned),
    )
    section = AzureSection(servers=tuple(sorted(servers, key=lambda s: s.id.casefold())))
    empty = "the template declares no Microsoft.DBforPostgreSQL/flexibleServers"
    others = sorted(
        {d.type for d in reading.deployed if d.type.casefold().startswith("microsoft.dbfor")}
    )
    if others:
        empty += f" (it declares {', '.join(others)})"
    if any(t.casefold() == SINGLE_SERVER for t in others):
        empty += "; Microsoft.DBforPostgreSQL/servers is the retired Single Server"
    return TemplateReading(section=section, origin=origin, issues=tuple(issues), empty_reason=empty)
