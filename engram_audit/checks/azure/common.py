"""Reading a flexible server's state the way ARM really sends it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engram_audit.checks.azure.catalogue import (
    AllowedValues,
    Availability,
    Offer,
    ParameterCatalogue,
    allowed_values,
    parameter_catalogue,
)
from engram_audit.checks.base import CheckContext, Outcome, errored, skipped, verdict
from engram_audit.model.snapshot import AzureServer, ServerParameter
from engram_audit.model.values import as_bool, dig, text

_VCORES = re.compile(r"^standard_[a-z]+?(\d+)", re.IGNORECASE)


def setting(path: str, value: object = None) -> str:
    """One ``setting`` fact (``checks.facts``): the server resource's property a fix sets, as
    ARM names it, and the value when one is implied (``properties.backup.backupRetentionDays=35``).
    Fixes of planned state (a plan, a template) name the source's attribute for the path."""
    return path if value is None else f"{path}={value}"


def prop(server: AzureServer, *path: str) -> Any:
    """A value under the resource's ``properties`` (``prop(s, "backup", "backupRetentionDays")``)."""
    return dig(server.resource, "properties", *path)


def sku(server: AzureServer, key: str) -> Any:
    return dig(server.resource, "sku", key)


def vcores_of(sku_name: str) -> int | None:
    """vCores from an Azure SKU name: ``Standard_D2s_v3`` -> 2, ``Standard_B1ms`` -> 1."""
    match = _VCORES.match(sku_name.strip())
    return int(match.group(1)) if match else None


def configuration_id(server: AzureServer, name: str) -> str:
    return f"{server.id}/configurations/{name}"


def major_version(server: AzureServer) -> str | None:
    """The PostgreSQL major version: ``properties.version`` ("16"), else the ``server_version``
    parameter ("16.8"); None when neither says."""
    for raw in (prop(server, "version"), _server_version_parameter(server)):
        major = text(raw).strip().lower().removeprefix("v").split(".")[0] if raw else ""
        if major.isdigit():
            return major
    return None


def _server_version_parameter(server: AzureServer) -> str | None:
    parameter = (server.parameters or {}).get("server_version")
    return parameter.value if parameter is not None else None


def compute_tier(server: AzureServer) -> str | None:
    """``sku.tier`` as ARM sent it (``Burstable``, ``GeneralPurpose``, ``MemoryOptimized``)."""
    tier = sku(server, "tier")
    return text(tier) if tier is not None and text(tier).strip() else None


class ParameterLookup:
    """Server parameters judged against Azure's catalogue (``checks.azure.catalogue``).

    When ARM's answer lacks a parameter, the catalogue decides: not offered on the server's major
    version, tier or switch state -> SKIP with that reason; offered -> ERROR "ARM did not return
    X, which Azure offers on PostgreSQL N"; not known -> ERROR saying what is unknown. A check
    using it must read ``azure.server`` too (the version and tier are in the server body).
    """

    def __init__(
        self,
        context: CheckContext,
        server: AzureServer,
        catalogue: ParameterCatalogue | None = None,
    ) -> None:
        self.context = context
        self.server = server
        self.catalogue = catalogue or parameter_catalogue()

    @property
    def collected(self) -> bool:
        return self.server.parameters is not None

    @property
    def major(self) -> str | None:
        return major_version(self.server)

    @property
    def tier(self) -> str | None:
        return compute_tier(self.server)

    def not_collected(self, name: str) -> Outcome:
        return self.context.not_collected(self.server.id, "parameters", expected=name)

    def get(self, name: str) -> ServerParameter | None:
        parameters = self.server.parameters or {}
        if name in parameters:
            return parameters[name]
        folded = name.casefold()
        return next((p for key, p in parameters.items() if key.casefold() == folded), None)

    def value_of(self, name: str) -> str | None:
        parameter = self.get(name)
        return parameter.value if parameter is not None else None

    def offer(self, name: str) -> Offer:
        """Whether Azure offers ``name`` on this server's version and tier, and why."""
        return self.catalogue.offer(name, major=self.major, tier=self.tier, value_of=self.value_of)

    def absent(self, name: str, expected: str = "") -> Outcome:
        """The outcome for a parameter ARM did not return (see the class docstring)."""
        resource = configuration_id(self.server, name)
        offer = self.offer(name)
        if offer.availability is Availability.NOT_OFFERED:
            return skipped(resource, f"not applicable: {offer.reason}", expected)
        if offer.availability is Availability.OFFERED:
            return errored(
                resource,
                f"ARM did not return {name}, which Azure offers on PostgreSQL {self.major}",
                expected,
            )
        return errored(resource, f"ARM did not return {name}, and {offer.reason}", expected)

    def require(self, name: str, expected: str = "") -> ServerParameter | Outcome:
        """The parameter, or the outcome to report instead (not collected: ERROR; absent: see
        ``absent``)."""
        if not self.collected:
            return self.context.not_collected(
                self.server.id, "parameters", f"{name} {expected}".strip()
            )
        parameter = self.get(name)
        return parameter if parameter is not None else self.absent(name, expected)

    def allowed(self, name: str, parameter: ServerParameter) -> AllowedValues | None:
        """Azure's allowed values: ARM's own ``allowedValues`` for this server, else the
        catalogue's row for its major version."""
        facts = self.catalogue.get(name)
        data_type = parameter.data_type or (facts.data_type if facts else None)
        if parameter.allowed_values and parameter.allowed_values.strip():
            return allowed_values(parameter.allowed_values, data_type)
        row = facts.on(self.major) if facts is not None and self.major is not None else None
        return allowed_values(row.allowed if row else None, data_type)

    def outside_allowed(self, name: str, parameter: ServerParameter) -> str:
        """A sentence naming the parameter and Azure's allowed values when the value is not
        among them; "" when it is, or when that cannot be told."""
        allowed = self.allowed(name, parameter)
        value = parameter.value
        if allowed is None or value is None or allowed.admits(value) is not False:
            return ""
        return f"{name}={value} is outside Azure's allowed values ({allowed.describe()})"


def each_server(context: CheckContext) -> Iterator[AzureServer]:
    yield from sorted(context.azure_servers, key=lambda s: s.id.casefold())


def switch_outcome(server: AzureServer, path: tuple[str, ...], wanted: bool) -> Outcome:
    """PASS/FAIL for an Enabled/Disabled property of one server, ERROR when it is unreadable."""
    expected = "Enabled" if wanted else "Disabled"
    raw = prop(server, *path)
    value = as_bool(raw)
    if value is None:
        return errored(server.id, f"{'.'.join(path)} is not readable: {text(raw)}", expected)
    fix = {} if value == wanted else {"setting": setting(".".join(("properties", *path)), expected)}
    return verdict(value == wanted, server.id, expected, text(raw), facts=fix)


def switch_outcomes(
    context: CheckContext, path: tuple[str, ...], wanted: bool
) -> Iterator[Outcome]:
    """``switch_outcome`` for every server."""
    for server in each_server(context):
        yield switch_outcome(server, path, wanted)
