"""Checks on server parameters (``configurations``), compared as Azure really sends them."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.azure.common import ParameterLookup, configuration_id, each_server
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.checks.tls import TlsVersion, tls_rank
from engram_audit.model.base import Source
from engram_audit.model.values import as_bool, as_int, as_set, text


def _bool_parameter(
    context: CheckContext, name: str, wanted: bool, check_label: str
) -> Iterator[Outcome]:
    expected = "on" if wanted else "off"
    for server in each_server(context):
        parameter = ParameterLookup(context, server).require(name)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        value = as_bool(parameter.value)
        resource = configuration_id(server, name)
        if value is None:
            yield errored(resource, f"{check_label}: {name}={text(parameter.value)} is not on/off")
            continue
        yield verdict(value == wanted, resource, expected, text(parameter.value))


class SecureTransportParams(Params):
    enabled: bool = True


@check(
    "azure.param.require_secure_transport",
    sources=[Source.AZURE],
    params=SecureTransportParams,
    reads=("azure.parameters",),
)
def require_secure_transport(
    params: SecureTransportParams, context: CheckContext
) -> Iterator[Outcome]:
    """The server refuses connections without TLS (`require_secure_transport`).

    Encryption in transit is required in every environment: Zep's messages and embeddings cross
    the network, and a DSN without `sslmode=require` would otherwise silently fall back to
    plaintext.

    Remediation: `az postgres flexible-server parameter set --name require_secure_transport --value on`.
    """
    yield from _bool_parameter(context, "require_secure_transport", params.enabled, "TLS")


class TlsVersionParams(Params):
    minimum: TlsVersion = "TLSv1.2"


@check(
    "azure.param.ssl_min_protocol_version",
    sources=[Source.AZURE],
    params=TlsVersionParams,
    reads=("azure.parameters",),
)
def ssl_min_protocol_version(params: TlsVersionParams, context: CheckContext) -> Iterator[Outcome]:
    """The oldest TLS version the server accepts is at least the minimum (TLS 1.2).

    The design requires TLS 1.2 or newer; TLS 1.0 and 1.1 are deprecated and fail most audits.

    Remediation: `az postgres flexible-server parameter set --name ssl_min_protocol_version --value TLSv1.2`.
    """
    name = "ssl_min_protocol_version"
    minimum = tls_rank(params.minimum)
    expected = f">= {params.minimum}"
    for server in each_server(context):
        parameter = ParameterLookup(context, server).require(name)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        resource = configuration_id(server, name)
        rank = tls_rank(text(parameter.value))
        if rank is None or minimum is None:
            yield errored(resource, f"unrecognised TLS version {text(parameter.value)!r}", expected)
            continue
        yield verdict(rank >= minimum, resource, expected, text(parameter.value))


class ExtensionsAllowlistParams(Params):
    required: list[str] = Field(default_factory=lambda: ["vector"])
    allowed: list[str] | None = Field(
        default=None, description="When set, every allow-listed extension must be in this list"
    )


@check(
    "azure.param.extensions_allowlist",
    sources=[Source.AZURE],
    params=ExtensionsAllowlistParams,
    reads=("azure.parameters",),
)
def extensions_allowlist(
    params: ExtensionsAllowlistParams, context: CheckContext
) -> Iterator[Outcome]:
    """pgvector (and any other required extension) is allow-listed in `azure.extensions`.

    Azure only lets `CREATE EXTENSION` run for extensions in this list; without `vector` Zep
    cannot store embeddings. An optional allow-list keeps unreviewed extensions out.

    Remediation: `az postgres flexible-server parameter set --name azure.extensions --value VECTOR,PG_STAT_STATEMENTS`
    (keep the extensions already listed).
    """
    name = "azure.extensions"
    required = {e.casefold() for e in params.required}
    allowed = {e.casefold() for e in params.allowed} if params.allowed is not None else None
    expected = "includes " + ", ".join(sorted(required))
    if allowed is not None:
        expected += "; only " + ", ".join(sorted(allowed))
    for server in each_server(context):
        parameter = ParameterLookup(context, server).require(name)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        listed = as_set(parameter.value)
        problems = []
        if missing := required - listed:
            problems.append("missing " + ", ".join(sorted(missing)))
        if allowed is not None and (extra := listed - allowed):
            problems.append("not allowed " + ", ".join(sorted(extra)))
        actual = text(parameter.value) if parameter.value else "(empty)"
        yield verdict(
            not problems, configuration_id(server, name), expected, actual, "; ".join(problems)
        )


class PreloadParams(Params):
    required: list[str] = Field(default_factory=lambda: ["pg_stat_statements"])
    require_tracking: bool = Field(
        default=True, description="pg_stat_statements.track must not be none (Azure's default)"
    )


@check(
    "azure.param.shared_preload_libraries",
    sources=[Source.AZURE],
    params=PreloadParams,
    reads=("azure.parameters",),
)
def shared_preload_libraries(params: PreloadParams, context: CheckContext) -> Iterator[Outcome]:
    """pg_stat_statements is preloaded and actually tracking statements.

    Slow-query monitoring (statements over 5 s) depends on pg_stat_statements; on Azure it must
    be in `shared_preload_libraries` and `pg_stat_statements.track` defaults to `none`, which
    records nothing.

    Remediation: `az postgres flexible-server parameter set --name shared_preload_libraries --value pg_stat_statements`
    (restart needed) and `... --name pg_stat_statements.track --value top`.
    """
    required = {lib.casefold() for lib in params.required}
    expected = "includes " + ", ".join(sorted(required))
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        if not lookup.collected:
            yield lookup.not_collected("shared_preload_libraries")
            continue
        preload = lookup.require("shared_preload_libraries")
        if isinstance(preload, Outcome):
            yield preload
        else:
            missing = required - as_set(preload.value)
            yield verdict(
                not missing,
                configuration_id(server, "shared_preload_libraries"),
                expected,
                text(preload.value) if preload.value else "(empty)",
                ("missing " + ", ".join(sorted(missing))) if missing else "",
            )
        if params.require_tracking and "pg_stat_statements" in required:
            track = lookup.get("pg_stat_statements.track")
            if track is None:
                yield lookup.absent("pg_stat_statements.track")
                continue
            value = text(track.value).strip().casefold()
            yield verdict(
                value in {"top", "all"},
                configuration_id(server, "pg_stat_statements.track"),
                "top or all",
                text(track.value),
            )


class PgBouncerParams(Params):
    enabled: bool = True
    min_pool_size: int | None = Field(default=None, ge=1)
    max_pool_size: int | None = Field(default=None, ge=1)
    server_idle_timeout_seconds: int | None = Field(default=None, ge=0)
    server_lifetime_seconds: int | None = Field(default=None, ge=0)


@check(
    "azure.param.pgbouncer",
    sources=[Source.AZURE],
    params=PgBouncerParams,
    reads=("azure.parameters",),
)
def pgbouncer(params: PgBouncerParams, context: CheckContext) -> Iterator[Outcome]:
    """The built-in PgBouncer is enabled and sized as the design says.

    Production uses connection pooling: pools of 20-50 per app instance, a 10 minute idle timeout
    and a 1 hour maximum server-connection lifetime, so Zep workers cannot exhaust
    max_connections. Azure sends `pgbouncer.enabled` as true/false and lists the other
    `pgbouncer.*` parameters only while it is enabled.

    Remediation: `az postgres flexible-server parameter set --name pgbouncer.enabled --value true`, then
    set `pgbouncer.default_pool_size`, `pgbouncer.server_idle_timeout` (600) and
    `pgbouncer.server_lifetime` (3600).
    """
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        switch = lookup.require("pgbouncer.enabled")
        if isinstance(switch, Outcome):
            yield switch
            continue
        enabled = as_bool(switch.value)
        resource = configuration_id(server, "pgbouncer.enabled")
        if enabled is None:
            yield errored(resource, f"pgbouncer.enabled={text(switch.value)} is not true/false")
            continue
        yield verdict(enabled is params.enabled, resource, text(params.enabled), text(switch.value))
        if not (enabled and params.enabled):
            continue
        pool = lookup.get("pgbouncer.default_pool_size")
        if params.min_pool_size is not None or params.max_pool_size is not None:
            low, high = params.min_pool_size, params.max_pool_size
            expected = f"{low if low is not None else '*'}..{high if high is not None else '*'}"
            size = as_int(pool.value) if pool is not None else None
            ok = (
                size is not None and (low is None or size >= low) and (high is None or size <= high)
            )
            yield verdict(
                ok,
                configuration_id(server, "pgbouncer.default_pool_size"),
                expected,
                text(pool.value) if pool is not None else "missing",
            )
        for name, wanted in (
            ("pgbouncer.server_idle_timeout", params.server_idle_timeout_seconds),
            ("pgbouncer.server_lifetime", params.server_lifetime_seconds),
        ):
            if wanted is None:
                continue
            parameter = lookup.get(name)
            seconds = as_int(parameter.value) if parameter is not None else None
            yield verdict(
                seconds == wanted,
                configuration_id(server, name),
                f"{wanted} s",
                f"{seconds} s" if seconds is not None else "missing",
            )


class AutovacuumParams(Params):
    enabled: bool = True


@check(
    "azure.param.autovacuum",
    sources=[Source.AZURE],
    params=AutovacuumParams,
    reads=("azure.parameters",),
)
def autovacuum_parameter(params: AutovacuumParams, context: CheckContext) -> Iterator[Outcome]:
    """Autovacuum is switched on at the server level.

    Zep updates and soft-deletes rows constantly; without autovacuum dead tuples pile up, HNSW
    and IVFFlat indexes bloat and search slows down.

    Remediation: `az postgres flexible-server parameter set --name autovacuum --value on`.
    """
    yield from _bool_parameter(context, "autovacuum", params.enabled, "autovacuum")
