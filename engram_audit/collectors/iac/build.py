"""The server a plan or template describes, as the snapshot's ``AzureServer``.

Readers (``terraform``, ``arm``) fill a ``ServerDraft`` with the ARM-shaped body and the child
resources they found, and record what they leave open. ``finish`` adds what every planned
server shares: Azure's parameter table for the planned version and tier (Azure's default for
each parameter not declared, marked ``system-default`` as ARM marks it), the HA state that only
a running server has, and Azure's documented defaults for a body that leaves them out.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram_audit.checks.azure.catalogue import allowed_values, parameter_catalogue
from engram_audit.collectors.iac.domains import (
    AZURE_DEFAULTS,
    DATA_ENCRYPTION,
    body_candidates,
    complete,
)
from engram_audit.model.base import Source
from engram_audit.model.snapshot import (
    AzureServer,
    CollectionIssue,
    EntraAdministrator,
    FirewallRule,
    InputFile,
    MetricAlert,
    PlannedResource,
    PlannedState,
    PlannedValue,
    ServerParameter,
)
from engram_audit.model.values import as_bool, dig, text

FLEXIBLE_SERVERS = "Microsoft.DBforPostgreSQL/flexibleServers"
USER_OVERRIDE = "user-override"
SYSTEM_DEFAULT = "system-default"
UNKNOWN_TEXT = "(known after apply)"
# A declared parameter whose value is open is judged over Azure's allowed values when they are
# a short list; otherwise over "no value" and Azure's default.
_MAX_PARAMETER_CHOICES = 12


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_file(role: Any, path: Path, display: str) -> InputFile:
    return InputFile(role=role, path=display, sha256=sha256_of(path))


def server_id(subscription: str, group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{FLEXIBLE_SERVERS}/{name}"
    )


@dataclass
class DeclaredParameter:
    value: str | None
    address: str
    open_reason: str | None = None  # the value is open (unknown until apply ...): why
    open_state: PlannedState = "unknown"
    attribute: str = ""
    file: str | None = None
    line: int | None = None


@dataclass
class ServerDraft:
    """A planned server while a reader fills it."""

    id: str
    name: str
    resource_group: str
    subscription_id: str
    address: str
    body: dict[str, Any]
    file: str | None = None
    line: int | None = None
    parameters: dict[str, DeclaredParameter] = field(default_factory=dict)
    firewall_rules: list[FirewallRule] = field(default_factory=list)
    administrators: list[EntraAdministrator] = field(default_factory=list)
    alerts: list[MetricAlert] = field(default_factory=list)
    planned: list[PlannedValue] = field(default_factory=list)
    resources: list[PlannedResource] = field(default_factory=list)
    issues: list[CollectionIssue] = field(default_factory=list)
    # Body paths whose absence means Azure's default (ARM templates); Terraform's provider
    # sends its own defaults, so its reader records those itself.
    azure_defaults: bool = False

    def open_value(
        self,
        path: tuple[str, ...],
        attribute: str,
        reason: str,
        *,
        state: PlannedState = "unknown",
        candidates: tuple[Any, ...] | None = None,
        probes: bool = False,
    ) -> None:
        """Record a value the input leaves open; it stays absent from the server.
        ``probes``: the candidates are probes, not every value it can take."""
        if candidates is None:
            candidates = body_candidates(path[1:]) if path[0] == "resource" else ()
        self.planned.append(
            PlannedValue(
                server=self.id,
                path=path,
                attribute=attribute,
                state=state,
                reason=reason,
                candidates=candidates,
                complete=complete(candidates) and not probes,
            )
        )

    def default_value(
        self, path: tuple[str, ...], attribute: str, reason: str, candidates: tuple[Any, ...]
    ) -> None:
        """Record that a value in the server is Azure's default for something not declared."""
        self.planned.append(
            PlannedValue(
                server=self.id,
                path=path,
                attribute=attribute,
                state="default",
                reason=reason,
                candidates=candidates,
            )
        )

    def declare(self, resource_id: str, address: str, file: str | None, line: int | None) -> None:
        self.resources.append(
            PlannedResource(id=resource_id, address=address, file=file, line=line)
        )

    def issue(self, part: str | None, reason: str) -> None:
        self.issues.append(
            CollectionIssue(source=Source.AZURE, resource=self.id, part=part, reason=reason)
        )


def put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    current = body
    for key in path[:-1]:
        nxt = current.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            current[key] = nxt
        current = nxt
    current[path[-1]] = value


def _is_open(draft: ServerDraft, path: tuple[str, ...]) -> bool:
    return any(
        v.path[: len(path)] == path or path[: len(v.path)] == v.path
        for v in draft.planned
        if v.state != "default"
    )


def _apply_azure_defaults(draft: ServerDraft, noun: str) -> None:
    """ARM templates: a body that leaves out a value Azure documents a default for gets it."""
    for path, value, source in AZURE_DEFAULTS:
        full = ("resource", *path)
        if dig(draft.body, *path) is not None or _is_open(draft, full):
            continue
        put(draft.body, path, value)
        draft.default_value(
            full,
            ".".join(path),
            f"not declared in the {noun}: Azure default ({source})",
            body_candidates(path),
        )
    if dig(draft.body, "properties", "dataEncryption") is None and not _is_open(
        draft, ("resource", "properties", "dataEncryption")
    ):
        draft.default_value(
            ("resource", "properties", "dataEncryption"),
            "properties.dataEncryption",
            f"not declared in the {noun}: Azure default, service-managed keys "
            "(learn.microsoft.com/azure/postgresql/flexible-server/security-data-encryption)",
            DATA_ENCRYPTION,
        )


def _live_ha_state(draft: ServerDraft) -> None:
    """HA health is known only on a running server: always open (live); a check that finds HA
    planned off does not read it."""
    draft.open_value(
        ("resource", "properties", "highAvailability", "state"),
        "highAvailability.state",
        "needs live state: the standby's health is known only on a running server",
        state="live",
    )


def max_connections_default(sku_name: str) -> str | None:
    """Azure's max_connections default for a SKU (``Standard_D4ds_v5``), from the catalogue's
    table (concepts-limits): computed from the SKU's memory when the server is provisioned."""
    short = sku_name.removeprefix("Standard_")
    for row in parameter_catalogue().max_connections_defaults.get("skus", ()):
        if any(fnmatch.fnmatchcase(short, name.strip()) for name in str(row["sku"]).split("/")):
            return str(row["max_connections"])
    return None


def _parameter_candidates(
    name: str, major: str | None, default: str | None
) -> tuple[tuple[Any, ...], bool]:
    """The values a declared parameter whose value is open can take, and whether they are all
    of them (Azure's allowed values) or probes (no value, Azure's default)."""
    facts = parameter_catalogue().get(name)
    row = facts.on(major) if facts is not None and major is not None else None
    allowed = allowed_values(row.allowed if row else None, facts.data_type if facts else None)
    if (
        allowed is not None
        and allowed.choices is not None
        and not allowed.multiple
        and len(allowed.choices) <= _MAX_PARAMETER_CHOICES
    ):
        return tuple(choice for choice in allowed.choices if choice), True
    return ((None, default) if default is not None else (None, "")), False


def _parameters(draft: ServerDraft, noun: str) -> dict[str, ServerParameter] | None:
    """Azure's parameter list for the planned version and tier: declared values, and Azure's
    default (``system-default``) for every parameter not declared."""
    major_raw = dig(draft.body, "properties", "version")
    tier = dig(draft.body, "sku", "tier")
    major = text(major_raw).strip().split(".")[0] if major_raw is not None else None
    if major is None or not major.isdigit() or tier is None:
        missing = "PostgreSQL version" if major is None or not major.isdigit() else "compute tier"
        draft.issue(
            "parameters",
            f"Azure's parameter defaults depend on the server's {missing}, which the {noun} "
            "leaves open",
        )
        return None
    catalogue = parameter_catalogue()
    declared = {name: p.value for name, p in draft.parameters.items() if p.value is not None}
    sku_name = dig(draft.body, "sku", "name")
    parameters: dict[str, ServerParameter] = {}
    for facts, row in catalogue.listed(major=major, tier=str(tier), values=declared):
        default = (
            (max_connections_default(str(sku_name)) if sku_name is not None else None)
            if facts.name == "max_connections"
            else row.default
        )
        if default is None and facts.name not in draft.parameters:
            continue
        parameters[facts.name] = ServerParameter(
            value=default,
            default_value=default,
            data_type=facts.arm_data_type,
            allowed_values=row.allowed,
            source=SYSTEM_DEFAULT,
        )
    for name, declared_parameter in sorted(draft.parameters.items()):
        known = parameters.get(name) or next(
            (p for key, p in parameters.items() if key.casefold() == name.casefold()), None
        )
        key = next((k for k in parameters if k.casefold() == name.casefold()), name)
        parameters[key] = ServerParameter(
            value=declared_parameter.value,
            default_value=known.default_value if known else None,
            data_type=known.data_type if known else None,
            allowed_values=known.allowed_values if known else None,
            source=USER_OVERRIDE,
        )
        if declared_parameter.open_reason is not None:
            default = known.default_value if known else None
            candidates, every = _parameter_candidates(key, major, default)
            draft.open_value(
                ("parameters", key, "value"),
                declared_parameter.attribute or name,
                declared_parameter.open_reason,
                state=declared_parameter.open_state,
                candidates=candidates,
                probes=not every,
            )
    return parameters


def finish(draft: ServerDraft, noun: str) -> AzureServer:
    """The draft as a snapshot server; open values, resources and issues stay on the draft."""
    if draft.azure_defaults:
        _apply_azure_defaults(draft, noun)
    _live_ha_state(draft)
    parameters = _parameters(draft, noun)
    return AzureServer(
        id=draft.id,
        name=draft.name,
        resource_group=draft.resource_group,
        subscription_id=draft.subscription_id,
        resource=draft.body,
        parameters=parameters,
        firewall_rules=tuple(draft.firewall_rules),
        administrators=tuple(draft.administrators),
        metric_alerts=tuple(draft.alerts),
    )


def switch(value: Any) -> str | None:
    """A boolean as ARM's ``Enabled``/``Disabled``; None when it is not one."""
    flag = as_bool(value)
    if flag is None:
        return None
    return "Enabled" if flag else "Disabled"
