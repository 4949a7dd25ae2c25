"""Checks on the flexible server resource itself: version, SKU, storage, high availability."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, field_validator, model_validator

from engram_audit.checks.azure.common import (
    each_server,
    prop,
    setting,
    sku,
    switch_outcome,
    vcores_of,
)
from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    failed,
    verdict,
)
from engram_audit.checks.facts import FactValue, no_downgrade
from engram_audit.model.base import Source
from engram_audit.model.values import as_int, fold, text


class VersionParams(Params):
    allowed: list[str] = Field(
        min_length=1, description="Allowed PostgreSQL major versions, e.g. ['16']"
    )


def _major(value: object) -> str:
    return text(value).strip().lower().removeprefix("v").split(".")[0]


@check(
    "azure.server.version",
    sources=[Source.AZURE],
    params=VersionParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting", "value", "unscripted"),
)
def server_version(params: VersionParams, context: CheckContext) -> Iterator[Outcome]:
    """The server runs an allowed PostgreSQL major version.

    The storage design pins PostgreSQL 16 in every environment so that extensions (pgvector),
    parameters and restore procedures behave the same from staging to production.

    Remediation: upgrade in place with `az postgres flexible-server upgrade --version 16`, after
    testing on a restored copy. Azure's in-place major version upgrade only moves a server to a
    newer major version (learn.microsoft.com, "Major version upgrades in Azure Database for
    PostgreSQL"): a server newer than every allowed version gets no command, but the choice
    between a new server at the allowed version and a policy that allows its version.
    """
    allowed = {_major(v) for v in params.allowed}
    expected = " or ".join(sorted(allowed))
    # A fix moves to the newest allowed major version.
    newest = max(allowed, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else 0, v))
    for server in each_server(context):
        actual = prop(server, "version")
        if actual is None:
            yield errored(
                server.id, "properties.version missing from the server resource", expected
            )
            continue
        major = _major(actual)
        ok = major in allowed
        fix: dict[str, FactValue] = {}
        if not ok:
            fix = {"setting": setting("properties.version", newest), "value": newest}
            if major.isdigit() and newest.isdigit() and int(major) > int(newest):
                fix["unscripted"] = no_downgrade(server.name, major, expected, newest)
        yield verdict(ok, server.id, expected, text(actual), facts=fix)


class TierParams(Params):
    allowed: list[str] = Field(
        min_length=1, description="Allowed SKU tiers (Burstable, GeneralPurpose, MemoryOptimized)"
    )


@check(
    "azure.sku.tier",
    sources=[Source.AZURE],
    params=TierParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def sku_tier(params: TierParams, context: CheckContext) -> Iterator[Outcome]:
    """The compute tier is one the environment allows.

    Production must never run on Burstable compute: CPU credits run out under sustained load and
    zone-redundant HA is not available on it. Staging and dev stay Burstable to keep cost minimal.

    Remediation: `az postgres flexible-server update --tier GeneralPurpose --sku-name Standard_D2s_v3`.
    """
    allowed = {fold(t): t for t in params.allowed}
    expected = " or ".join(params.allowed)
    for server in each_server(context):
        actual = sku(server, "tier")
        if actual is None:
            yield errored(server.id, "sku.tier missing from the server resource", expected)
            continue
        ok = fold(actual) in allowed
        # The policy's first allowed tier; the expectation lists the others.
        fix = {} if ok else {"setting": setting("sku.tier", params.allowed[0])}
        yield verdict(ok, server.id, expected, text(actual), facts=fix)


class SizeParams(Params):
    allowed: list[str] = Field(default_factory=list, description="Allowed SKU names; empty: any")
    min_vcores: int | None = Field(default=None, ge=1)
    max_vcores: int | None = Field(default=None, ge=1, description="Cost cap")

    @model_validator(mode="after")
    def _something_to_check(self) -> SizeParams:
        if not self.allowed and self.min_vcores is None and self.max_vcores is None:
            raise ValueError("give at least one of allowed, min_vcores, max_vcores")
        return self


def _size_expectation(params: SizeParams) -> str:
    parts = []
    if params.allowed:
        parts.append("one of " + ", ".join(params.allowed))
    if params.min_vcores is not None:
        parts.append(f">= {params.min_vcores} vCores")
    if params.max_vcores is not None:
        parts.append(f"<= {params.max_vcores} vCores")
    return "; ".join(parts)


def _allowed_size(params: SizeParams) -> str | None:
    """The first allowed SKU name within the vCore bounds; None when the policy names none (a
    fix then says which bounds the SKU must meet)."""
    for name in params.allowed:
        vcores = vcores_of(name)
        if vcores is None:
            continue
        if params.min_vcores is not None and vcores < params.min_vcores:
            continue
        if params.max_vcores is not None and vcores > params.max_vcores:
            continue
        return name
    return None


@check(
    "azure.sku.size",
    sources=[Source.AZURE],
    params=SizeParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def sku_size(params: SizeParams, context: CheckContext) -> Iterator[Outcome]:
    """The SKU is an allowed size: named SKUs, a minimum vCore count, a maximum for cost caps.

    Production needs at least 2 vCores (Standard_D2s_v3 or larger) for Zep's embedding and search
    load; staging and dev are capped at Standard_B1ms so that nothing bigger is paid for.

    Remediation: `az postgres flexible-server update --sku-name <allowed SKU>`.
    """
    allowed = {name.casefold() for name in params.allowed}
    expected = _size_expectation(params)
    for server in each_server(context):
        name = sku(server, "name")
        if name is None:
            yield errored(server.id, "sku.name missing from the server resource", expected)
            continue
        name = text(name)
        vcores = vcores_of(name)
        needs_vcores = params.min_vcores is not None or params.max_vcores is not None
        if needs_vcores and vcores is None:
            yield errored(server.id, f"cannot read a vCore count from SKU name {name!r}", expected)
            continue
        problems = []
        if allowed and name.casefold() not in allowed:
            problems.append(f"{name} is not an allowed SKU")
        if params.min_vcores is not None and vcores is not None and vcores < params.min_vcores:
            problems.append(f"{vcores} vCores is below {params.min_vcores}")
        if params.max_vcores is not None and vcores is not None and vcores > params.max_vcores:
            problems.append(f"{vcores} vCores is above the cap of {params.max_vcores}")
        actual = name if vcores is None else f"{name} ({vcores} vCores)"
        fix = {} if not problems else {"setting": setting("sku.name", _allowed_size(params))}
        yield verdict(not problems, server.id, expected, actual, "; ".join(problems), facts=fix)


class StorageSizeParams(Params):
    min_gb: int | None = Field(default=None, ge=1)
    max_gb: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _bounded(self) -> StorageSizeParams:
        if self.min_gb is None and self.max_gb is None:
            raise ValueError("give min_gb, max_gb or both")
        if self.min_gb is not None and self.max_gb is not None and self.min_gb > self.max_gb:
            raise ValueError("min_gb is greater than max_gb")
        return self


@check(
    "azure.storage.size_gb",
    sources=[Source.AZURE],
    params=StorageSizeParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def storage_size(params: StorageSizeParams, context: CheckContext) -> Iterator[Outcome]:
    """Provisioned storage is within the environment's bounds.

    The design sizes storage per environment (32 GB staging/dev, 64 GB UAT, 128 GB or more in
    production); too little risks a full disk, more than the cap in staging costs money for nothing.

    Remediation: `az postgres flexible-server update --storage-size <GB>` (storage can only grow).
    """
    if params.min_gb is not None and params.min_gb == params.max_gb:
        expected = f"{params.min_gb} GB"
    else:
        bounds = []
        if params.min_gb is not None:
            bounds.append(f">= {params.min_gb} GB")
        if params.max_gb is not None:
            bounds.append(f"<= {params.max_gb} GB")
        expected = " and ".join(bounds)
    for server in each_server(context):
        raw = prop(server, "storage", "storageSizeGB")
        size = as_int(raw)
        if size is None:
            yield errored(server.id, f"storage size is not a number: {text(raw)}", expected)
            continue
        ok = (params.min_gb is None or size >= params.min_gb) and (
            params.max_gb is None or size <= params.max_gb
        )
        bound = (
            params.min_gb if params.min_gb is not None and size < params.min_gb else params.max_gb
        )
        fix = {} if ok else {"setting": setting("properties.storage.storageSizeGB", bound)}
        yield verdict(ok, server.id, expected, f"{size} GB", facts=fix)


class AutoGrowParams(Params):
    enabled: bool = True


@check(
    "azure.storage.auto_grow",
    sources=[Source.AZURE],
    params=AutoGrowParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting",),
)
def storage_auto_grow(params: AutoGrowParams, context: CheckContext) -> Iterator[Outcome]:
    """Storage auto-grow is set as the environment requires.

    Production storage "scales with data volume": with auto-grow a burst of sessions cannot fill
    the disk and make the server read-only.

    `storage.autoGrow` first appears in API version 2023-03-01-preview; bodies from older
    versions do not have it. Microsoft documents no service default for a server whose body
    omits it (the API definition gives none, and the CLI's "Default value is Enabled" is the
    default of its own flag), so an absent value is ERROR naming that, never a guessed verdict.

    Remediation: `az postgres flexible-server update --storage-auto-grow Enabled`.
    """
    expected = "Enabled" if params.enabled else "Disabled"
    for server in each_server(context):
        if prop(server, "storage", "autoGrow") is None:
            yield errored(
                server.id,
                "storage.autoGrow is not in the server resource: API versions before "
                "2023-03-01-preview do not report it, and Microsoft documents no default to "
                "assume; read the server with a newer api-version",
                expected,
            )
            continue
        yield switch_outcome(server, ("storage", "autoGrow"), params.enabled)


# Known values (tests/azure/api_versions/SHAPES.md section 7: models.tsp @ dd817ad and the
# 2024-08-01 swagger). Both enums are extensible; a mode outside them cannot be judged, a state
# outside them is at least not Healthy.
HA_MODES = {"disabled": "Disabled", "zoneredundant": "ZoneRedundant", "samezone": "SameZone"}
HA_STATES = {
    fold(state): state
    for state in (
        "NotEnabled",
        "CreatingStandby",
        "ReplicatingData",
        "FailingOver",
        "Healthy",
        "RemovingStandby",
        "RecreatingStandby",
        "ComputeUpdatingByFailover",
    )
}


class HighAvailabilityParams(Params):
    mode: str = Field(description="ZoneRedundant, SameZone or Disabled")
    require_healthy: bool = Field(default=True, description="State must be Healthy when HA is on")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if fold(value) not in HA_MODES:
            raise ValueError(
                f"unknown high-availability mode {value!r}; Azure's modes are "
                + ", ".join(HA_MODES.values())
            )
        return value


@check(
    "azure.ha.mode",
    sources=[Source.AZURE],
    params=HighAvailabilityParams,
    reads=("azure.server",),
    planned=True,
    facts=("setting", "unscripted"),
)
def ha_mode(params: HighAvailabilityParams, context: CheckContext) -> Iterator[Outcome]:
    """High availability runs in the required mode, and is healthy.

    UAT and production promise zone-redundant HA (RTO 15 minutes in production through automatic
    failover); a standby that is not Healthy gives no such protection. Staging and dev run without
    HA to save cost.

    Azure's modes are Disabled, ZoneRedundant and SameZone; its states NotEnabled,
    CreatingStandby, ReplicatingData, FailingOver, Healthy, RemovingStandby, RecreatingStandby and
    ComputeUpdatingByFailover, in any casing. Only Healthy counts as healthy; a state Azure does
    not define, or none at all, is not known to be healthy (FAIL where health is required). A
    mode Azure does not define, or a body without `highAvailability.mode`, is ERROR.

    A server in the required mode whose standby is not Healthy has no scripted fix: its finding
    says what to watch instead of repeating the mode change.

    Remediation: `az postgres flexible-server update --ids {server_id} --zonal-resiliency Enabled`
    (ZoneRedundant; `--zonal-resiliency Disabled` turns HA off).
    """
    wants_ha = fold(params.mode) != "disabled"
    expected = params.mode + (", Healthy" if wants_ha and params.require_healthy else "")
    for server in each_server(context):
        mode = prop(server, "highAvailability", "mode")
        state = prop(server, "highAvailability", "state")
        if mode is None:
            yield errored(
                server.id, "highAvailability.mode missing from the server resource", expected
            )
            continue
        if fold(mode) not in HA_MODES:
            yield errored(
                server.id,
                f"unknown highAvailability.mode {text(mode)!r} (Azure defines "
                + ", ".join(HA_MODES.values())
                + ")",
                expected,
            )
            continue
        actual = text(mode) + (f", {text(state)}" if state is not None else "")
        if fold(mode) != fold(params.mode):
            wanted = HA_MODES[fold(params.mode)]
            fix = {"setting": setting("properties.highAvailability.mode", wanted)}
            yield failed(server.id, expected, actual, facts=fix)
        elif wants_ha and params.require_healthy and fold(state) != "healthy":
            if state is None:
                reason = "no HA state reported: the standby is not known to be healthy"
            elif fold(state) in HA_STATES:
                reason = "the HA standby is not healthy"
            else:
                reason = (
                    f"HA state {text(state)!r} is not one Azure defines: the standby is not "
                    "known to be healthy"
                )
            shown = text(state) if state is not None else "not reported"
            unscripted = (
                f"High availability is already {text(mode)}; the standby's state is {shown}, "
                "which no setting changes. Watch it become Healthy (`az postgres flexible-server "
                f"show --ids {server.id} --query highAvailability`); if it does not, read the "
                "server's activity log and Resource health and open an Azure support case."
            )
            yield failed(server.id, expected, actual, reason, facts={"unscripted": unscripted})
        else:
            yield verdict(True, server.id, expected, actual)
