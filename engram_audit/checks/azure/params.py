"""Checks on server parameters (``configurations``), compared as Azure really sends them.

Every parameter is looked up through ``ParameterLookup``, which judges an absent parameter
against Azure's parameter catalogue (``checks.azure.catalogue``): not offered on the server's
major version or tier is SKIP with that reason, offered but not returned by ARM is ERROR. A value
outside Azure's allowed values is named in the finding, with the allowed values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import Field

from engram_audit.checks.azure.catalogue import Availability
from engram_audit.checks.azure.common import ParameterLookup, configuration_id, each_server
from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    failed,
    skipped,
    verdict,
)
from engram_audit.checks.facts import FactValue
from engram_audit.checks.tls import TlsVersion, tls_rank
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureServer, ServerParameter
from engram_audit.model.values import as_bool, as_int, as_set, text

PARAMETER_READS = ("azure.parameters", "azure.server")
"""What a parameter check reads: the parameters, and the server body for its version and tier."""
PARAMETER_FACTS = ("parameter", "current", "value", "restart")
"""The parameter, its current value and the value a fix sets; ``restart`` for static ones."""
STATIC_PARAMETERS = frozenset({"shared_preload_libraries"})
"""Parameters Azure applies only after a server restart, for when the catalogue does not say
(``restart_required``); Microsoft's tables list shared_preload_libraries as static on 11-18."""


def restart_required(lookup: ParameterLookup, name: str) -> bool:
    """Whether a change to ``name`` takes effect only after a restart: Microsoft's parameter
    table for the server's major version (the catalogue's ``parameter_type``, static or dynamic,
    each row naming the table it was read from), else the parameter's ``dynamic`` entry, else
    ``STATIC_PARAMETERS``."""
    facts = lookup.catalogue.get(name)
    static = facts.static_on(lookup.major) if facts is not None else None
    if static is not None:
        return static[0]
    return name.casefold() in STATIC_PARAMETERS


def extended(
    current: str | None,
    wanted: Iterable[str],
    spelled: str | None,
    drop: Iterable[str] = (),
) -> str:
    """A list parameter's value with what is missing appended, never replaced; a missing entry
    is spelled as Azure's allowed values spell it when they list it. Entries in ``drop`` (any
    case) are removed: what a rule forbids, nothing else."""
    dropped = {d.strip().casefold() for d in drop}
    entries = [
        e.strip()
        for e in (current or "").split(",")
        if e.strip() and e.strip().casefold() not in dropped
    ]
    have = {e.casefold() for e in entries}
    spellings = {e.strip().casefold(): e.strip() for e in (spelled or "").split(",") if e.strip()}
    for name in wanted:
        if name.casefold() not in have:
            entries.append(spellings.get(name.casefold(), name))
            have.add(name.casefold())
    return ",".join(entries)


def parameter_facts(
    lookup: ParameterLookup, name: str, current: str | None, value: str
) -> dict[str, FactValue]:
    """``PARAMETER_FACTS`` for a fix that sets ``name`` to ``value`` on the lookup's server."""
    facts: dict[str, FactValue] = {"parameter": name, "current": current or "", "value": value}
    if restart_required(lookup, name):
        facts["restart"] = "required"
    return facts


def _allows(lookup: ParameterLookup, name: str, parameter: ServerParameter) -> str:
    allowed = lookup.allowed(name, parameter)
    return f" (Azure allows: {allowed.describe()})" if allowed is not None else ""


def _bool_parameter(
    context: CheckContext, name: str, wanted: bool, check_label: str
) -> Iterator[Outcome]:
    expected = "on" if wanted else "off"
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        parameter = lookup.require(name, expected)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        value = as_bool(parameter.value)
        resource = configuration_id(server, name)
        if value is None:
            yield errored(
                resource,
                f"{check_label}: {name}={text(parameter.value)} is not on/off"
                + _allows(lookup, name, parameter),
                expected,
            )
            continue
        yield verdict(
            value == wanted,
            resource,
            expected,
            text(parameter.value),
            lookup.outside_allowed(name, parameter),
            facts=parameter_facts(lookup, name, parameter.value, expected),
        )


class SecureTransportParams(Params):
    enabled: bool = True


@check(
    "azure.param.require_secure_transport",
    sources=[Source.AZURE],
    params=SecureTransportParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def require_secure_transport(
    params: SecureTransportParams, context: CheckContext
) -> Iterator[Outcome]:
    """The server refuses connections without TLS (`require_secure_transport`).

    Encryption in transit is required in every environment: Zep's messages and embeddings cross
    the network, and a DSN without `sslmode=require` would otherwise silently fall back to
    plaintext. Azure offers the parameter on every major version (11-18, default `on`), so when
    ARM's answer lacks it the finding is ERROR, never a silent skip of the TLS gate.

    Remediation: `az postgres flexible-server parameter set --name require_secure_transport --value on`.
    """
    yield from _bool_parameter(context, "require_secure_transport", params.enabled, "TLS")


class TlsVersionParams(Params):
    minimum: TlsVersion = "TLSv1.2"


@check(
    "azure.param.ssl_min_protocol_version",
    sources=[Source.AZURE],
    params=TlsVersionParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def ssl_min_protocol_version(params: TlsVersionParams, context: CheckContext) -> Iterator[Outcome]:
    """The oldest TLS version the server accepts is at least the minimum (TLS 1.2).

    The design requires TLS 1.2 or newer; TLS 1.0 and 1.1 are deprecated and fail most audits.
    Azure offers `ssl_min_protocol_version` on PostgreSQL 12-18 with the values TLSv1.2 and
    TLSv1.3 (default TLSv1.2); PostgreSQL 11 has no such parameter, so the finding there is SKIP.
    A value outside Azure's allowed values is still judged against the minimum and named.

    Remediation: `az postgres flexible-server parameter set --name ssl_min_protocol_version --value TLSv1.2`.
    """
    name = "ssl_min_protocol_version"
    minimum = tls_rank(params.minimum)
    expected = f">= {params.minimum}"
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        parameter = lookup.require(name, expected)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        resource = configuration_id(server, name)
        rank = tls_rank(text(parameter.value))
        if rank is None or minimum is None:
            yield errored(
                resource,
                f"unrecognised TLS version {text(parameter.value)!r}"
                + _allows(lookup, name, parameter),
                expected,
            )
            continue
        yield verdict(
            rank >= minimum,
            resource,
            expected,
            text(parameter.value),
            lookup.outside_allowed(name, parameter),
            facts=parameter_facts(lookup, name, parameter.value, params.minimum),
        )


class ExtensionsAllowlistParams(Params):
    required: list[str] = Field(default_factory=lambda: ["vector"])
    allowed: list[str] | None = Field(
        default=None, description="When set, every allow-listed extension must be in this list"
    )


@check(
    "azure.param.extensions_allowlist",
    sources=[Source.AZURE],
    params=ExtensionsAllowlistParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def extensions_allowlist(
    params: ExtensionsAllowlistParams, context: CheckContext
) -> Iterator[Outcome]:
    """pgvector (and any other required extension) is allow-listed in `azure.extensions`.

    Azure only lets `CREATE EXTENSION` run for extensions in this list; without `vector` Zep
    cannot store embeddings. An optional allow-list keeps unreviewed extensions out. Azure's
    default is an empty list; names are compared in any case (`VECTOR` = `vector`).

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
        lookup = ParameterLookup(context, server)
        parameter = lookup.require(name, expected)
        if isinstance(parameter, Outcome):
            yield parameter
            continue
        listed = as_set(parameter.value)
        problems = []
        if missing := required - listed:
            problems.append("missing " + ", ".join(sorted(missing)))
        if allowed is not None and (extra := listed - allowed):
            problems.append("not allowed " + ", ".join(sorted(extra)))
        if outside := lookup.outside_allowed(name, parameter):
            problems.append(outside)
        actual = text(parameter.value) if parameter.value else "(empty)"
        yield verdict(
            not (missing or (allowed is not None and listed - allowed)),
            configuration_id(server, name),
            expected,
            actual,
            "; ".join(problems),
            facts=parameter_facts(
                lookup,
                name,
                parameter.value,
                extended(
                    parameter.value,
                    sorted(required),
                    parameter.allowed_values,
                    drop=listed - allowed if allowed is not None else (),
                ),
            ),
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
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def shared_preload_libraries(params: PreloadParams, context: CheckContext) -> Iterator[Outcome]:
    """pg_stat_statements is preloaded and actually tracking statements.

    Slow-query monitoring (statements over 5 s) depends on pg_stat_statements; on Azure it must
    be in `shared_preload_libraries` (Azure preloads it by default on every version) and
    `pg_stat_statements.track` defaults to `none`, which records nothing.

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
        preload = lookup.require("shared_preload_libraries", expected)
        if isinstance(preload, Outcome):
            yield preload
        else:
            missing = required - as_set(preload.value)
            problems = [("missing " + ", ".join(sorted(missing))) if missing else ""]
            problems.append(lookup.outside_allowed("shared_preload_libraries", preload))
            yield verdict(
                not missing,
                configuration_id(server, "shared_preload_libraries"),
                expected,
                text(preload.value) if preload.value else "(empty)",
                "; ".join(p for p in problems if p),
                facts=parameter_facts(
                    lookup,
                    "shared_preload_libraries",
                    preload.value,
                    extended(preload.value, sorted(required), preload.allowed_values),
                ),
            )
        if params.require_tracking and "pg_stat_statements" in required:
            name = "pg_stat_statements.track"
            track = lookup.require(name, "top or all")
            if isinstance(track, Outcome):
                yield track
                continue
            value = text(track.value).strip().casefold()
            yield verdict(
                value in {"top", "all"},
                configuration_id(server, name),
                "top or all",
                text(track.value),
                lookup.outside_allowed(name, track),
                facts=parameter_facts(lookup, name, track.value, "top"),
            )


class PgBouncerParams(Params):
    enabled: bool = True
    min_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Lower bound for pgbouncer.default_pool_size, the server connections per "
        "user/database pair (not Azure's pgbouncer.min_pool_size)",
    )
    max_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Upper bound for pgbouncer.default_pool_size, the server connections per "
        "user/database pair",
    )
    server_idle_timeout_seconds: int | None = Field(
        default=None, ge=0, description="Required pgbouncer.server_idle_timeout, in seconds"
    )
    server_lifetime_seconds: int | None = Field(
        default=None,
        ge=0,
        description="The design's maximum server-connection lifetime. Azure's PgBouncer has no "
        "such parameter: the finding is SKIP, naming the application's pool as the place to "
        "enforce it",
    )


def _pgbouncer_absent(lookup: ParameterLookup, params: PgBouncerParams, expected: str) -> Outcome:
    """pgbouncer.enabled missing from ARM's answer: not offered (Burstable), or an error."""
    resource = configuration_id(lookup.server, "pgbouncer.enabled")
    offer = lookup.offer("pgbouncer.enabled")
    if offer.availability is Availability.NOT_OFFERED and params.enabled:
        # The rule requires the feature itself: a tier without it cannot comply.
        facts = lookup.catalogue.get("pgbouncer.enabled")
        tier = lookup.tier
        where = (
            f"on {tier}"
            if tier is not None and facts is not None and not facts.offered_on_tier(tier)
            else f"on PostgreSQL {lookup.major}"
        )
        return failed(
            resource,
            expected,
            "not offered",
            f"PgBouncer is not offered {where}: {offer.reason}",
            facts={
                "unscripted": f"PgBouncer is not offered {where}: it needs the General Purpose "
                "or Memory Optimized tier, a compute change for this server (a person's "
                "decision on size and cost), after which pgbouncer.enabled can be set to true."
            },
        )
    return lookup.absent("pgbouncer.enabled", expected)


def _pgbouncer_parameters(lookup: ParameterLookup) -> str:
    """The PgBouncer parameters Azure has on this server's version, from the catalogue."""
    major = lookup.major
    names = sorted(
        name
        for name, facts in lookup.catalogue.parameters.items()
        if name.startswith("pgbouncer.")
        and major is not None
        and (row := facts.on(major)) is not None
        and row.exists
    )
    return ", ".join(names)


def _lifetime(lookup: ParameterLookup, server: AzureServer, seconds: int) -> Outcome:
    where = f"PostgreSQL {lookup.major}" if lookup.major else "any PostgreSQL version"
    offered = _pgbouncer_parameters(lookup)
    return skipped(
        server.id,
        f"Azure's built-in PgBouncer has no server-lifetime parameter on {where}"
        + (f" (it offers {offered})" if offered else "")
        + f": a maximum connection lifetime of {seconds} s cannot be judged on the server. "
        "Enforce it in the application's connection pool (its maximum connection lifetime).",
        f"server connections recycled after {seconds} s",
        "no such Azure parameter",
    )


def _pool_size(lookup: ParameterLookup, server: AzureServer, params: PgBouncerParams) -> Outcome:
    name = "pgbouncer.default_pool_size"
    low, high = params.min_pool_size, params.max_pool_size
    bounds = f"{low if low is not None else '*'}..{high if high is not None else '*'}"
    expected = f"{bounds} per user/database pair"
    pool = lookup.require(name, expected)
    if isinstance(pool, Outcome):
        return pool
    resource = configuration_id(server, name)
    size = as_int(pool.value)
    if size is None:
        return errored(
            resource,
            f"{name}={text(pool.value)} is not a whole number" + _allows(lookup, name, pool),
            expected,
        )
    ok = (low is None or size >= low) and (high is None or size <= high)
    wanted = size  # the nearest bound when outside them
    if low is not None and size < low:
        wanted = low
    elif high is not None and size > high:
        wanted = high
    message = lookup.outside_allowed(name, pool)
    if not ok:
        message = "; ".join(
            part
            for part in (
                "the pool size is per user/database pair: each pair Zep connects as gets "
                "its own pool",
                message,
            )
            if part
        )
    return verdict(
        ok,
        resource,
        expected,
        f"{size} per user/database pair",
        message,
        facts=parameter_facts(lookup, name, pool.value, str(wanted)),
    )


def _seconds(lookup: ParameterLookup, server: AzureServer, name: str, wanted: int) -> Outcome:
    expected = f"{wanted} s"
    parameter = lookup.require(name, expected)
    if isinstance(parameter, Outcome):
        return parameter
    resource = configuration_id(server, name)
    seconds = as_int(parameter.value)
    if seconds is None:
        return errored(
            resource,
            f"{name}={text(parameter.value)} is not a whole number of seconds"
            + _allows(lookup, name, parameter),
            expected,
        )
    return verdict(
        seconds == wanted,
        resource,
        expected,
        f"{seconds} s",
        lookup.outside_allowed(name, parameter),
        facts=parameter_facts(lookup, name, parameter.value, str(wanted)),
    )


@check(
    "azure.param.pgbouncer",
    sources=[Source.AZURE],
    params=PgBouncerParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=(*PARAMETER_FACTS, "unscripted"),
)
def pgbouncer(params: PgBouncerParams, context: CheckContext) -> Iterator[Outcome]:
    """The built-in PgBouncer is enabled and sized as the design says, as far as Azure offers it.

    Production pools connections so that Zep workers cannot exhaust max_connections: pools of
    20-50 per application instance, a 10 minute idle timeout and a 1 hour maximum connection
    lifetime. Azure's built-in PgBouncer is judged on what Azure offers: `pgbouncer.enabled`
    (true/false), the pool size `pgbouncer.default_pool_size` and
    `pgbouncer.server_idle_timeout`. Azure's pool size counts server connections per
    user/database pair (default 50), shared by every instance that connects as that user to that
    database; it is not per server or per application instance, and the policy's bounds apply to
    that shared pool. Azure has no server-lifetime parameter: a lifetime requirement is a SKIP
    finding naming the application's connection pool as the place to enforce it, never a FAIL.

    PgBouncer exists only on the General Purpose and Memory Optimized tiers; on Burstable ARM
    does not list `pgbouncer.enabled` at all. There the finding is SKIP when the rule wants
    PgBouncer off, and FAIL ("PgBouncer is not offered on Burstable") when it requires it. The
    other `pgbouncer.*` parameters are listed only while PgBouncer is enabled; one missing then is
    ERROR (ARM did not return what Azure offers).

    Remediation: `az postgres flexible-server parameter set --name pgbouncer.enabled --value true`
    (General Purpose or Memory Optimized tier), then `pgbouncer.default_pool_size` (per
    user/database pair) and `pgbouncer.server_idle_timeout` (600); set the maximum connection
    lifetime (3600 s) in the application's connection pool. Each finding's fix names its
    parameter and the value: the pool size is brought to the nearest bound.
    """
    expected = text(params.enabled)
    for server in each_server(context):
        lookup = ParameterLookup(context, server)
        if not lookup.collected:
            yield lookup.not_collected("pgbouncer.enabled")
            continue
        switch = lookup.get("pgbouncer.enabled")
        if switch is None:
            yield _pgbouncer_absent(lookup, params, expected)
            continue
        enabled = as_bool(switch.value)
        resource = configuration_id(server, "pgbouncer.enabled")
        if enabled is None:
            yield errored(
                resource,
                f"pgbouncer.enabled={text(switch.value)} is not true/false"
                + _allows(lookup, "pgbouncer.enabled", switch),
                expected,
            )
            continue
        yield verdict(
            enabled is params.enabled,
            resource,
            expected,
            text(switch.value),
            lookup.outside_allowed("pgbouncer.enabled", switch),
            facts=parameter_facts(lookup, "pgbouncer.enabled", switch.value, expected),
        )
        if not (enabled and params.enabled):
            continue
        if params.min_pool_size is not None or params.max_pool_size is not None:
            yield _pool_size(lookup, server, params)
        if params.server_idle_timeout_seconds is not None:
            yield _seconds(
                lookup, server, "pgbouncer.server_idle_timeout", params.server_idle_timeout_seconds
            )
        if params.server_lifetime_seconds is not None:
            yield _lifetime(lookup, server, params.server_lifetime_seconds)


class AutovacuumParams(Params):
    enabled: bool = True


@check(
    "azure.param.autovacuum",
    sources=[Source.AZURE],
    params=AutovacuumParams,
    reads=PARAMETER_READS,
    planned=True,
    facts=PARAMETER_FACTS,
)
def autovacuum_parameter(params: AutovacuumParams, context: CheckContext) -> Iterator[Outcome]:
    """Autovacuum is switched on at the server level.

    Zep updates and soft-deletes rows constantly; without autovacuum dead tuples pile up, HNSW
    and IVFFlat indexes bloat and search slows down.

    Remediation: `az postgres flexible-server parameter set --name autovacuum --value on`.
    """
    yield from _bool_parameter(context, "autovacuum", params.enabled, "autovacuum")
