"""Reading a flexible server's state the way ARM really sends it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from engram_audit.checks.base import CheckContext, Outcome, errored, skipped, verdict
from engram_audit.model.snapshot import AzureServer, ServerParameter
from engram_audit.model.values import as_bool, dig, text

_VCORES = re.compile(r"^standard_[a-z]+?(\d+)", re.IGNORECASE)


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


class ParameterLookup:
    """Server parameters with the two outcomes every parameter check needs when one is absent."""

    def __init__(self, context: CheckContext, server: AzureServer) -> None:
        self.context = context
        self.server = server

    @property
    def collected(self) -> bool:
        return self.server.parameters is not None

    def not_collected(self, name: str) -> Outcome:
        return self.context.not_collected(self.server.id, "parameters", expected=name)

    def get(self, name: str) -> ServerParameter | None:
        parameters = self.server.parameters or {}
        if name in parameters:
            return parameters[name]
        folded = name.casefold()
        return next((p for key, p in parameters.items() if key.casefold() == folded), None)

    def absent(self, name: str) -> Outcome:
        return skipped(
            configuration_id(self.server, name),
            f"parameter {name} does not exist on this server (not applicable to its major version)",
        )

    def require(self, name: str) -> ServerParameter | Outcome:
        """The parameter, or the outcome to report instead (not collected: ERROR; absent: SKIP)."""
        if not self.collected:
            return self.not_collected(name)
        parameter = self.get(name)
        return parameter if parameter is not None else self.absent(name)


def each_server(context: CheckContext) -> Iterator[AzureServer]:
    yield from sorted(context.azure_servers, key=lambda s: s.id.casefold())


def switch_outcomes(
    context: CheckContext, path: tuple[str, ...], wanted: bool
) -> Iterator[Outcome]:
    """PASS/FAIL per server for an Enabled/Disabled property, ERROR when it is unreadable."""
    expected = "Enabled" if wanted else "Disabled"
    for server in each_server(context):
        raw = prop(server, *path)
        value = as_bool(raw)
        if value is None:
            yield errored(server.id, f"{'.'.join(path)} is not readable: {text(raw)}", expected)
            continue
        yield verdict(value == wanted, server.id, expected, text(raw))
